"""The trigram indexes lead with owner_id: (owner_id, lower(serial)) and (owner_id,
lower(order_no)), GIN with btree_gin for the owner column. They replace 0008's lower(...) ones.

A SERIAL # / ORDER # substring of 3 characters is one trigram: '%273%' matches 30,000 of
5,000,000 devices, 5,000 of them one owner's. With the trigram alone PostgreSQL fetched all
30,000 rows from the heap to keep the owner's (or AND-ed the trigram bitmap with a million-entry
owner bitmap); with the owner inside the same GIN index the index itself intersects the owner's
posting list with the trigram's, and only the owner's 5,000 matches are fetched. A search without
an owner (a customer's read rights) uses the second column alone, as well as the old index did.

The owner condition must be written as ``owner_id = ANY(<bigint[]>)`` for the index to take it:
btree_gin (PostgreSQL 15) has no ``bigint = integer`` operator (``devices.search.owner_in``).
btree_gin is a trusted extension (PostgreSQL 13+), so a database owner without superuser rights
may create it. Built CONCURRENTLY: the device table stays writable. PostgreSQL only.
"""

from django.db import migrations

INDEXES = [
    ("devices_owner_serial_lc_trgm", "USING gin (owner_id, lower(serial) gin_trgm_ops)"),
    ("devices_owner_order_lc_trgm", "USING gin (owner_id, lower(order_no) gin_trgm_ops)"),
]
OLD_INDEXES = [
    ("devices_serial_lc_trgm", "USING gin (lower(serial) gin_trgm_ops)"),
    ("devices_order_lc_trgm", "USING gin (lower(order_no) gin_trgm_ops)"),
]


def _swap(schema_editor, drop, create) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for name, definition in create:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON devices_device {definition}"
        )
    for name, _definition in drop:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def forwards(apps, schema_editor):
    _swap(schema_editor, OLD_INDEXES, INDEXES)


def backwards(apps, schema_editor):
    _swap(schema_editor, INDEXES, OLD_INDEXES)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("devices", "0011_device_changed_at")]

    operations = [migrations.RunPython(forwards, backwards)]
