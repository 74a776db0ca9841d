"""Device counts per (owner, order number), kept by statement triggers like 0006's per-(owner,
type) counts, with a trigram index of their own: an ORDER # substring search is counted by
summing the counts of the matching order numbers (an owner has far fewer distinct order numbers
than devices) instead of reading every matching device. A row whose count falls to 0 is deleted
(the partial index finds those). PostgreSQL only, like 0006.
"""

from django.db import migrations, models

# The SQL is copied here (not imported) so this migration keeps meaning what it meant. Every
# function pins its search_path (docs/database.md).
TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION devices_order_count_ins() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO devices_ownerordercount (owner_id, order_no, n)
    SELECT owner_id, order_no, count(*) FROM devices_new_rows
    WHERE owner_id IS NOT NULL GROUP BY owner_id, order_no
    ON CONFLICT (owner_id, order_no) DO UPDATE SET n = devices_ownerordercount.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION devices_order_count_del() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
    -- An upsert, not UPDATE ... FROM: a transition table has no statistics, and the join to a
    -- count table of millions of rows was planned as a scan of all of them.
    INSERT INTO devices_ownerordercount (owner_id, order_no, n)
    SELECT owner_id, order_no, -count(*) FROM devices_old_rows
    WHERE owner_id IS NOT NULL GROUP BY owner_id, order_no
    ON CONFLICT (owner_id, order_no) DO UPDATE SET n = devices_ownerordercount.n + EXCLUDED.n;
    DELETE FROM devices_ownerordercount WHERE n <= 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION devices_order_count_upd() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
    WITH moved AS (
        SELECT o.owner_id AS old_owner, o.order_no AS old_order,
               n.owner_id AS new_owner, n.order_no AS new_order
        FROM devices_old_rows o JOIN devices_new_rows n ON n.id = o.id
        WHERE o.owner_id IS DISTINCT FROM n.owner_id OR o.order_no IS DISTINCT FROM n.order_no
    ), delta AS (
        SELECT owner_id, order_no, sum(k) AS k FROM (
            SELECT old_owner AS owner_id, old_order AS order_no, -1 AS k
            FROM moved WHERE old_owner IS NOT NULL
            UNION ALL
            SELECT new_owner, new_order, 1 FROM moved WHERE new_owner IS NOT NULL
        ) changes GROUP BY owner_id, order_no
    )
    INSERT INTO devices_ownerordercount (owner_id, order_no, n)
    SELECT owner_id, order_no, k FROM delta WHERE k <> 0
    ON CONFLICT (owner_id, order_no) DO UPDATE SET n = devices_ownerordercount.n + EXCLUDED.n;
    DELETE FROM devices_ownerordercount WHERE n <= 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION devices_order_count_truncate() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
    -- DELETE, not TRUNCATE: a TRUNCATE of both tables in one statement (Django's flush) would
    -- truncate the count table while that statement uses it, which PostgreSQL refuses.
    DELETE FROM devices_ownerordercount;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS devices_order_count_ins ON devices_device;
CREATE TRIGGER devices_order_count_ins AFTER INSERT ON devices_device
    REFERENCING NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_order_count_ins();
DROP TRIGGER IF EXISTS devices_order_count_del ON devices_device;
CREATE TRIGGER devices_order_count_del AFTER DELETE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_order_count_del();
DROP TRIGGER IF EXISTS devices_order_count_upd ON devices_device;
CREATE TRIGGER devices_order_count_upd AFTER UPDATE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_order_count_upd();
DROP TRIGGER IF EXISTS devices_order_count_truncate ON devices_device;
CREATE TRIGGER devices_order_count_truncate AFTER TRUNCATE ON devices_device
    FOR EACH STATEMENT EXECUTE FUNCTION devices_order_count_truncate();
"""

INDEX_SQL = """
CREATE INDEX IF NOT EXISTS devices_ownerorder_lc_trgm ON devices_ownerordercount
    USING gin (owner_id, lower(order_no) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS devices_ownerorder_empty ON devices_ownerordercount (owner_id)
    WHERE n <= 0;
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS devices_order_count_ins ON devices_device;
DROP TRIGGER IF EXISTS devices_order_count_del ON devices_device;
DROP TRIGGER IF EXISTS devices_order_count_upd ON devices_device;
DROP TRIGGER IF EXISTS devices_order_count_truncate ON devices_device;
DROP FUNCTION IF EXISTS devices_order_count_ins();
DROP FUNCTION IF EXISTS devices_order_count_del();
DROP FUNCTION IF EXISTS devices_order_count_upd();
DROP FUNCTION IF EXISTS devices_order_count_truncate();
DROP INDEX IF EXISTS devices_ownerorder_lc_trgm;
DROP INDEX IF EXISTS devices_ownerorder_empty;
"""

RECOUNT_SQL = """
DELETE FROM devices_ownerordercount;
INSERT INTO devices_ownerordercount (owner_id, order_no, n)
SELECT owner_id, order_no, count(*) FROM devices_device
WHERE owner_id IS NOT NULL GROUP BY owner_id, order_no;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.execute("LOCK TABLE devices_device IN SHARE ROW EXCLUSIVE MODE")
    schema_editor.execute(TRIGGER_SQL, None)
    schema_editor.execute(RECOUNT_SQL, None)
    schema_editor.execute(INDEX_SQL, None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, None)


class Migration(migrations.Migration):
    dependencies = [("devices", "0012_owner_trigram_indexes")]

    operations = [
        migrations.CreateModel(
            name="OwnerOrderCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("owner_id", models.BigIntegerField()),
                ("order_no", models.CharField(max_length=40)),
                ("n", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddConstraint(
            model_name="ownerordercount",
            constraint=models.UniqueConstraint(
                fields=("owner_id", "order_no"), name="devices_ownerordercount_unique"
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]
