"""Exact device counts per (owner, type), maintained by PostgreSQL triggers (migration 0006).

Statement-level triggers with transition tables add and subtract whole statements at once, so a
bulk import of a million devices touches each (owner, type) row once, inside the importing
transaction: the counts are exact whenever the rows are visible.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

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


def counts_maintained() -> bool:
    """True where the triggers exist (PostgreSQL)."""
    return connection.vendor == "postgresql"


def recount() -> None:
    """Rebuild every count from the table, e.g. after a restore without triggers."""
    if not counts_maintained():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE devices_device IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(RECOUNT_SQL)


def owned_count(org_ids: Iterable[int], types: Iterable[str] | None = None) -> int | None:
    """Devices owned by these organizations (of these types, if given) from the maintained
    counts; None where counts are not maintained (SQLite)."""
    if not counts_maintained():
        return None
    from devices.models import OwnerTypeCount

    rows = OwnerTypeCount.objects.filter(owner_id__in=list(org_ids))
    if types is not None:
        rows = rows.filter(device_type__in=list(types))
    return int(sum(rows.values_list("n", flat=True)))
