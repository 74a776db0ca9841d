"""Exact device counts per owner, maintained by PostgreSQL triggers (migration 0005).

Statement-level triggers with transition tables add and subtract whole statements at once, so a
bulk import of a million devices updates each owner's row once, inside the importing
transaction: the count is exact whenever the rows are visible.
"""

from __future__ import annotations

from django.db import connection, transaction

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION devices_owner_count_ins() RETURNS trigger AS $$
BEGIN
    INSERT INTO devices_ownerdevicecount (owner_id, n)
    SELECT owner_id, count(*) FROM devices_new_rows WHERE owner_id IS NOT NULL GROUP BY owner_id
    ON CONFLICT (owner_id) DO UPDATE SET n = devices_ownerdevicecount.n + EXCLUDED.n;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_owner_count_del() RETURNS trigger AS $$
BEGIN
    UPDATE devices_ownerdevicecount c SET n = c.n - d.k
    FROM (SELECT owner_id, count(*) AS k FROM devices_old_rows
          WHERE owner_id IS NOT NULL GROUP BY owner_id) d
    WHERE c.owner_id = d.owner_id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_owner_count_upd() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT o.owner_id AS old_owner, n.owner_id AS new_owner
        FROM devices_old_rows o JOIN devices_new_rows n ON n.id = o.id
        WHERE o.owner_id IS DISTINCT FROM n.owner_id
    ), delta AS (
        SELECT owner_id, sum(k) AS k FROM (
            SELECT old_owner AS owner_id, -1 AS k FROM moved WHERE old_owner IS NOT NULL
            UNION ALL
            SELECT new_owner, 1 FROM moved WHERE new_owner IS NOT NULL
        ) changes GROUP BY owner_id
    )
    INSERT INTO devices_ownerdevicecount (owner_id, n)
    SELECT owner_id, k FROM delta
    ON CONFLICT (owner_id) DO UPDATE SET n = devices_ownerdevicecount.n + EXCLUDED.n;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_owner_count_truncate() RETURNS trigger AS $$
BEGIN
    DELETE FROM devices_ownerdevicecount;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS devices_owner_count_ins ON devices_device;
CREATE TRIGGER devices_owner_count_ins AFTER INSERT ON devices_device
    REFERENCING NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_owner_count_ins();
DROP TRIGGER IF EXISTS devices_owner_count_del ON devices_device;
CREATE TRIGGER devices_owner_count_del AFTER DELETE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_owner_count_del();
DROP TRIGGER IF EXISTS devices_owner_count_upd ON devices_device;
CREATE TRIGGER devices_owner_count_upd AFTER UPDATE ON devices_device
    REFERENCING OLD TABLE AS devices_old_rows NEW TABLE AS devices_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION devices_owner_count_upd();
DROP TRIGGER IF EXISTS devices_owner_count_truncate ON devices_device;
CREATE TRIGGER devices_owner_count_truncate AFTER TRUNCATE ON devices_device
    FOR EACH STATEMENT EXECUTE FUNCTION devices_owner_count_truncate();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS devices_owner_count_ins ON devices_device;
DROP TRIGGER IF EXISTS devices_owner_count_del ON devices_device;
DROP TRIGGER IF EXISTS devices_owner_count_upd ON devices_device;
DROP TRIGGER IF EXISTS devices_owner_count_truncate ON devices_device;
DROP FUNCTION IF EXISTS devices_owner_count_ins();
DROP FUNCTION IF EXISTS devices_owner_count_del();
DROP FUNCTION IF EXISTS devices_owner_count_upd();
DROP FUNCTION IF EXISTS devices_owner_count_truncate();
"""

RECOUNT_SQL = """
DELETE FROM devices_ownerdevicecount;
INSERT INTO devices_ownerdevicecount (owner_id, n)
SELECT owner_id, count(*) FROM devices_device WHERE owner_id IS NOT NULL GROUP BY owner_id;
"""


def counts_maintained() -> bool:
    """True where the triggers exist (PostgreSQL)."""
    return connection.vendor == "postgresql"


def recount() -> None:
    """Rebuild every owner's count from the table, e.g. after a restore without triggers."""
    if not counts_maintained():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE devices_device IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(RECOUNT_SQL)


def owned_count(org_ids: list[int]) -> int | None:
    """Devices owned by these organizations from the maintained counts; None on SQLite."""
    if not counts_maintained():
        return None
    from devices.models import OwnerDeviceCount

    rows = OwnerDeviceCount.objects.filter(owner_id__in=org_ids).values_list("n", flat=True)
    return int(sum(rows))
