"""Exact device counts per (owner, type) and per (owner, order number), maintained by PostgreSQL
triggers (the SQL lives in migrations 0006 and 0013, the one place that installs them).

Statement-level triggers with transition tables add and subtract whole statements at once, so a
bulk import of a million devices touches each (owner, type) row once, inside the importing
transaction: the counts are exact whenever the rows are visible.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet

from kamkeys.prepared import PreparedQuery
from kamkeys.sqlarrays import column_in

# The rows are written in (owner, value) order, so each owner's rows sit on neighbouring pages:
# an ORDER # substring count reads the matching rows of one owner (docs/database.md, "Order
# number counts"), and where those were spread over the whole table ('501' on the bench: 10,280
# rows on 8,610 pages) it took 47 ms, on 177 pages 12 ms.
RECOUNT_SQL = """
DELETE FROM devices_ownertypecount;
INSERT INTO devices_ownertypecount (owner_id, device_type, n)
SELECT owner_id, device_type, count(*) FROM devices_device
WHERE owner_id IS NOT NULL GROUP BY owner_id, device_type ORDER BY owner_id, device_type;
DELETE FROM devices_ownerordercount;
INSERT INTO devices_ownerordercount (owner_id, order_no, n)
SELECT owner_id, order_no, count(*) FROM devices_device
WHERE owner_id IS NOT NULL GROUP BY owner_id, order_no ORDER BY owner_id, order_no;
"""


COUNT_TABLES = ("devices_ownertypecount", "devices_ownerordercount")


def counts_maintained() -> bool:
    """True where the triggers exist (PostgreSQL)."""
    return connection.vendor == "postgresql"


def recount() -> None:
    """Rebuild every count from the table, e.g. after a restore without triggers, then vacuum
    the count tables (outside a transaction)."""
    if not counts_maintained():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE devices_device IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(RECOUNT_SQL)
    if connection.in_atomic_block:  # VACUUM cannot run in a transaction (a caller's, a test's)
        return
    # The old rows are dead but still in the indexes until a vacuum: an ORDER # count that
    # followed at once visited them too ('501' on the bench: 8,787 pages for 10,280 rows, 97 ms
    # instead of 12). The fresh statistics are the planner's.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(COUNT_TABLES)}")


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


def order_search_count(org_ids: list[int], search: Mapping[str, str]) -> int | None:
    """The number of these organizations' devices an ORDER # substring search matches (with a
    TRANSFERRED TO term beside it, or none), from the maintained per-(owner, order number)
    counts: the matching order numbers are found among the owners' distinct ones (a trigram
    index on the count table) and their counts summed. The condition reads only ``order_no``,
    so every device of a matching (owner, order number) matches, and no other does.

    None where it does not apply: another database, no organizations, or a search with any other
    term (TYPE, SERIAL #) or an ORDER # prefix; the caller then counts the devices."""
    found = _order_matches(org_ids, search)
    return None if found is None else found[1]


def _order_matches(
    org_ids: list[int], search: Mapping[str, str]
) -> tuple[list[int], int, list[str] | None] | None:
    """(the organizations left after TRANSFERRED TO, the count, and the matching order numbers
    when the count is at most ``READ_ALL_UP_TO``) as ``order_search_count``: one statement, so
    the count and the order numbers are of one snapshot."""
    from devices.search import TRIGRAM_PLAN, is_substring_term, planned

    order = search.get("order", "")
    if not counts_maintained() or not org_ids or not is_substring_term(order):
        return None
    if set(search) - {"order", "owner"}:
        return None
    ids = _named(org_ids, search["owner"]) if "owner" in search else list(org_ids)
    if not ids:
        return ids, 0, []
    inner, params = _order_counts(ids, order).values_list("n", "order_no").query.sql_with_params()
    with planned(TRIGRAM_PLAN), connection.cursor() as cursor:  # the trigram index, always
        cursor.execute(
            "SELECT sum(m0), CASE WHEN sum(m0) <= %s THEN array_agg(m1) END "  # noqa: S608
            f"FROM ({inner}) AS m (m0, m1)",
            (READ_ALL_UP_TO, *params),
        )
        total, orders = cursor.fetchone()
    return ids, int(total or 0), orders


def _order_counts(ids: list[int], order: str) -> QuerySet[Any]:
    from devices.models import OwnerOrderCount
    from devices.search import search_q

    owners = column_in('"devices_ownerordercount"."owner_id"', ids)
    return OwnerOrderCount.objects.filter(owners, search_q({"order": order}), n__gt=0)


def _named(org_ids: Iterable[int], term: str) -> list[int]:
    """Those of these organizations whose name contains ``term`` (the TRANSFERRED TO search)."""
    from accounts.models import Organization

    named = Organization.objects.filter(pk__in=list(org_ids), name__icontains=term)
    return list(named.values_list("pk", flat=True))


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


# An ORDER # search that matches more devices than SMALL_RESULT but at most this many is paged
# from all of its matches, found by their order numbers (an index range each), with a top-N sort;
# a larger one walks the sort index, which fills a page after about 25 / (its share of the
# owner's devices) entries. A walk is cheap only where matches are dense along the sort order:
# '5032' (10,200 of a million, most of them in order numbers 5032000-5032999) sorted by ORDER #
# descending walked 250,000 entries (110 ms); reading its 10,200 matches takes 8-10 ms.
READ_ALL_UP_TO = 20_000


class PageTotal(NamedTuple):
    """What the My devices page knows of a substring search before its rows are read."""

    total: int | None  # the count, or None: the paginator counts
    count_key: str  # the cache key a large count is then kept under, or ""
    # The same devices by their order numbers, to read whole (an ORDER # search of a mid size).
    matches: QuerySet[Any] | None


def substring_page_total(org_ids: list[int], search: dict[str, str]) -> PageTotal:
    """An ORDER # search is counted from the per-(owner, order number) counts: at most
    ``SMALL_RESULT`` devices, the page reads it whole in the one trigram scan that counts it
    (total None), up to ``READ_ALL_UP_TO`` it is read whole by its order numbers (``matches``),
    a larger one's page walks the sort index. Any other substring search comes from the
    minute's cache, or None."""
    from devices.paging import SMALL_RESULT
    from devices.search import owned_by

    found = _order_matches(org_ids, search)
    if found is None:
        return PageTotal(*cached_search_count(org_ids, search), None)
    ids, total, orders = found
    if total <= SMALL_RESULT:
        return PageTotal(None, "", None)
    if orders is None:  # more than READ_ALL_UP_TO
        return PageTotal(total, "", None)
    by_order = column_in('"devices_device"."order_no"', orders, "text")
    return PageTotal(total, "", owned_by(ids).filter(by_order))
