"""The (owner, serial) covering index also carries device_type, so a TYPE search sorted by serial
(the default order) filters inside the index-only scan instead of visiting the table for every
row it skips on a deep page. PostgreSQL only, like 0003."""

from django.db import migrations

NEW = "(owner_id, serial) INCLUDE (id, device_type)"
OLD = "(owner_id, serial) INCLUDE (id)"


def _recreate(schema_editor, definition: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS devices_owner_serial_cov")
    schema_editor.execute(f"CREATE INDEX devices_owner_serial_cov ON devices_device {definition}")


def forwards(apps, schema_editor):
    _recreate(schema_editor, NEW)


def backwards(apps, schema_editor):
    _recreate(schema_editor, OLD)


class Migration(migrations.Migration):
    dependencies = [("devices", "0003_search_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
