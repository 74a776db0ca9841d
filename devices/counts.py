"""Exact device counts per (owner, type), maintained by PostgreSQL triggers (the SQL lives in
migration 0006, the one place that installs them).

Statement-level triggers with transition tables add and subtract whole statements at once, so a
bulk import of a million devices touches each (owner, type) row once, inside the importing
transaction: the counts are exact whenever the rows are visible.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet

from kamkeys.prepared import PreparedQuery

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
    org_ids = list(org_ids)
    if not org_ids:
        return 0
    if types is None:
        rows = _OWNED.run(org_ids=org_ids)
    else:
        types = list(types)
        if not types:
            return 0
        rows = _OWNED_OF_TYPES.run(org_ids=org_ids, types=types)
    return int(sum(row[0] for row in rows))


def _owned_counts(org_ids: list[int]) -> QuerySet[Any]:
    from devices.models import OwnerTypeCount

    return OwnerTypeCount.objects.filter(owner_id__in=org_ids).values_list("n")


def _owned_counts_of_types(org_ids: list[int], types: list[str]) -> QuerySet[Any]:
    return _owned_counts(org_ids).filter(device_type__in=types)


# Asked for every page of a Super User's list: compiled once per process (kamkeys.prepared).
_OWNED = PreparedQuery(_owned_counts)
_OWNED_OF_TYPES = PreparedQuery(_owned_counts_of_types)


# A broad ORDER # / SERIAL # substring search ('146' matches 5,000 of a million devices) costs a
# few hundred milliseconds to count, and Next / Previous would pay that on every page. Its count
# is kept this long, keyed by the organizations, the search and their device totals (so adding,
# removing or transferring a device starts a new count at once).
SEARCH_COUNT_SECONDS = 60


def _search_count_key(org_ids: Iterable[int], search: dict[str, str]) -> str | None:
    ids = sorted(set(org_ids))
    version = owned_count(ids)
    if version is None:
        return None
    text = json.dumps([ids, sorted(search.items()), version])
    return "devices:search-count:" + hashlib.sha256(text.encode()).hexdigest()


def cached_search_count(org_ids: Iterable[int], search: dict[str, str]) -> tuple[int | None, str]:
    """(the kept count of this search over these organizations' devices or None, its key)."""
    key = _search_count_key(org_ids, search)
    if key is None:
        return None, ""
    return cache.get(key), key


def keep_search_count(key: str, total: int) -> None:
    if key:
        cache.set(key, total, SEARCH_COUNT_SECONDS)
