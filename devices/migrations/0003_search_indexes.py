"""Indexes that keep "My devices" fast at millions of rows (PostgreSQL only).

- trigram GIN on serial and order number: substring search;
- (owner, serial / type / order number) INCLUDE (id): sort, prefix search and deep pages as
  index-only scans;
- device_type alone: the loose index scan that lists the few distinct types.

SQLite gets none of these: it serves the embedded default with a few hundred devices.
"""

from django.db import migrations

INDEXES = [
    ("devices_serial_trgm", "USING gin (serial gin_trgm_ops)"),
    ("devices_order_trgm", "USING gin (order_no gin_trgm_ops)"),
    ("devices_owner_serial_cov", "(owner_id, serial) INCLUDE (id)"),
    ("devices_owner_type_cov", "(owner_id, device_type, serial) INCLUDE (id)"),
    ("devices_owner_order_cov", "(owner_id, order_no, serial) INCLUDE (id)"),
    ("devices_type", "(device_type)"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON devices_device {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _definition in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("devices", "0002_registration_attempts")]

    operations = [migrations.RunPython(create, drop)]
