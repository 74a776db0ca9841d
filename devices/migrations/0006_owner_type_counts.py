"""Counts per (owner, type) replace the per-owner counts of 0005, so TYPE searches are counted
from a few rows too. Triggers on PostgreSQL only, like 0005."""

import importlib

from django.db import migrations, models

# The SQL is copied here (not imported) so this migration keeps meaning what it meant.
TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION devices_type_count_ins() RETURNS trigger AS $$
BEGIN
    INSERT INTO devices_ownertypecount (owner_id, device_type, n)
    SELECT owner_id, device_type, count(*) FROM devices_new_rows
    WHERE owner_id IS NOT NULL GROUP BY owner_id, device_type
    ON CONFLICT (owner_id, device_type) DO UPDATE SET n = devices_ownertypecount.n + EXCLUDED.n;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_type_count_del() RETURNS trigger AS $$
BEGIN
    UPDATE devices_ownertypecount c SET n = c.n - d.k
    FROM (SELECT owner_id, device_type, count(*) AS k FROM devices_old_rows
          WHERE owner_id IS NOT NULL GROUP BY owner_id, device_type) d
    WHERE c.owner_id = d.owner_id AND c.device_type = d.device_type;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_type_count_upd() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT o.owner_id AS old_owner, o.device_type AS old_type,
               n.owner_id AS new_owner, n.device_type AS new_type
        FROM devices_old_rows o JOIN devices_new_rows n ON n.id = o.id
        WHERE o.owner_id IS DISTINCT FROM n.owner_id OR o.device_type <> n.device_type
    ), delta AS (
        SELECT owner_id, device_type, sum(k) AS k FROM (
            SELECT old_owner AS owner_id, old_type AS device_type, -1 AS k
            FROM moved WHERE old_owner IS NOT NULL
            UNION ALL
            SELECT new_owner, new_type, 1 FROM moved WHERE new_owner IS NOT NULL
        ) changes GROUP BY owner_id, device_type
    )
    INSERT INTO devices_ownertypecount (owner_id, device_type, n)
    SELECT owner_id, device_type, k FROM delta
    ON CONFLICT (owner_id, device_type) DO UPDATE SET n = devices_ownertypecount.n + EXCLUDED.n;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_type_count_truncate() RETURNS trigger AS $$
BEGIN
    DELETE FROM devices_ownertypecount;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS devices_type_count_ins ON devices_device;
CREATE TRIGGER devices_type_count_ins AFTER INSERT ON devices_device
    REFERENCING NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_type_count_ins();
DROP TRIGGER IF EXISTS devices_type_count_del ON devices_device;
CREATE TRIGGER devices_type_count_del AFTER DELETE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_type_count_del();
DROP TRIGGER IF EXISTS devices_type_count_upd ON devices_device;
CREATE TRIGGER devices_type_count_upd AFTER UPDATE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_type_count_upd();
DROP TRIGGER IF EXISTS devices_type_count_truncate ON devices_device;
CREATE TRIGGER devices_type_count_truncate AFTER TRUNCATE ON devices_device
    FOR EACH STATEMENT EXECUTE FUNCTION devices_type_count_truncate();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS devices_type_count_ins ON devices_device;
DROP TRIGGER IF EXISTS devices_type_count_del ON devices_device;
DROP TRIGGER IF EXISTS devices_type_count_upd ON devices_device;
DROP TRIGGER IF EXISTS devices_type_count_truncate ON devices_device;
DROP FUNCTION IF EXISTS devices_type_count_ins();
DROP FUNCTION IF EXISTS devices_type_count_del();
DROP FUNCTION IF EXISTS devices_type_count_upd();
DROP FUNCTION IF EXISTS devices_type_count_truncate();
"""

RECOUNT_SQL = """
DELETE FROM devices_ownertypecount;
INSERT INTO devices_ownertypecount (owner_id, device_type, n)
SELECT owner_id, device_type, count(*) FROM devices_device
WHERE owner_id IS NOT NULL GROUP BY owner_id, device_type;
"""



def _previous():
    return importlib.import_module("devices.migrations.0005_owner_device_counts")


def drop_owner_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_previous().DROP_SQL, None)


def restore_owner_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _previous().install(apps, schema_editor)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("LOCK TABLE devices_device IN SHARE ROW EXCLUSIVE MODE")
    schema_editor.execute(TRIGGER_SQL, None)
    schema_editor.execute(RECOUNT_SQL, None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, None)


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0005_owner_device_counts'),
    ]

    operations = [
        migrations.RunPython(drop_owner_triggers, restore_owner_triggers),
        migrations.CreateModel(
            name='OwnerTypeCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('owner_id', models.BigIntegerField()),
                ('device_type', models.CharField(max_length=80)),
                ('n', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.DeleteModel(
            name='OwnerDeviceCount',
        ),
        migrations.AddConstraint(
            model_name='ownertypecount',
            constraint=models.UniqueConstraint(fields=('owner_id', 'device_type'), name='devices_ownertypecount_unique'),
        ),
        migrations.RunPython(install, uninstall),
    ]
