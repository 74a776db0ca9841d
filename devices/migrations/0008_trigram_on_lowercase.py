"""The trigram indexes cover lower(serial) and lower(order_no) instead of the bare columns.

pg_trgm also answers equality, so with a trigram index on the bare column the planner sometimes
served ``serial = ANY(<10,000 serials>)`` (an import's "is it stored?" lookup, a paste of serial
numbers) with ten thousand trigram searches instead of the unique btree: minutes instead of
milliseconds. On lower(...) the trigram index serves only the substring searches, which are
written against lower(...) (and so are case-insensitive, index-served, for order numbers too).
Built CONCURRENTLY: the device table stays writable while a large one is indexed. PostgreSQL only.
"""

from django.db import migrations

INDEXES = [
    ("devices_serial_lc_trgm", "USING gin (lower(serial) gin_trgm_ops)"),
    ("devices_order_lc_trgm", "USING gin (lower(order_no) gin_trgm_ops)"),
]
OLD_INDEXES = [
    ("devices_serial_trgm", "USING gin (serial gin_trgm_ops)"),
    ("devices_order_trgm", "USING gin (order_no gin_trgm_ops)"),
]


def _swap(schema_editor, drop, create) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
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
    dependencies = [("devices", "0007_fewer_write_costs")]

    operations = [migrations.RunPython(forwards, backwards)]
