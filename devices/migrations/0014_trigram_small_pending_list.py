"""The owner trigram indexes (0012, and 0013's on the order counts) keep at most 256 kB of
not-yet-merged entries.

GIN collects new entries in a pending list (4 MB by default) and merges them later; every
search reads that list whole, and the planner charges every page of it to the index. After a
few thousand registrations or an import the charge could outweigh the owner's btree range, and
the same substring search switched to reading all of the owner's devices until autovacuum
merged the list (devices' plan test failed one run in two this way). At 256 kB the charge stays
small; an insert of 100,000 devices took 1.07 s against 0.95 s with the default. PostgreSQL
only; the lists already there are merged now."""

from django.db import migrations

INDEXES = (
    "devices_owner_serial_lc_trgm",
    "devices_owner_order_lc_trgm",
    "devices_ownerorder_lc_trgm",
)
PENDING_LIST_KB = 256


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(
            f"ALTER INDEX {name} SET (gin_pending_list_limit = {PENDING_LIST_KB})"
        )
        schema_editor.execute("SELECT gin_clean_pending_list(%s::regclass)", [name])


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"ALTER INDEX {name} RESET (gin_pending_list_limit)")


class Migration(migrations.Migration):
    dependencies = [("devices", "0013_owner_order_counts")]

    operations = [migrations.RunPython(forwards, backwards)]
