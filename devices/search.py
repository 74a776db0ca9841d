"""The column searches of "My devices", as plain data and as one ``Q``.

A search is a small dict ``{"order": ..., "serial": ..., "type": ..., "owner": ...}`` of cleaned
terms. It is what the table filters by, and what "Select all N devices in this search" stores in
the session instead of hundreds of thousands of ids.

Each term is written so PostgreSQL can answer it from an index at a million rows:

- ORDER # and SERIAL #: substring, case-insensitive (pg_trgm GIN index on (owner_id,
  lower(...)), with ``owned_by`` beside it) from 3 characters on; a term ending in
  ``*``, and a term of 1-2 characters, matches only the beginning, which is also written as a
  range so the btree index answers it;
- TYPE: matched in Python against the few distinct types, then ``device_type IN (...)``;
- TRANSFERRED TO: matched against organization names, then ``owner_id IN (...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.db.models.lookups import Contains

from accounts.models import Organization
from devices.models import Device
from kamkeys.sqlarrays import column_in

SEARCH_FIELDS: tuple[str, ...] = ("order", "serial", "type", "owner")
MAX_TERM_LENGTH = 80
# ORDER # and SERIAL # terms shorter than this match the beginning, not anywhere.
MIN_SUBSTRING_LENGTH = 3
# Above this many matching organizations the owner search stays a subquery.
MAX_OWNER_IDS_INLINE = 2000

Search = dict[str, str]


def clean_search(params: Mapping[str, Any]) -> Search:
    """Keep the known, non-empty search terms, stripped and cut to a sane length."""
    search: Search = {}
    for field in SEARCH_FIELDS:
        value = params.get(field)
        if isinstance(value, list | tuple):
            value = value[-1] if value else ""
        if not isinstance(value, str):
            continue
        value = "".join(ch for ch in value if ch.isprintable() or ch.isspace())
        value = " ".join(value.split())[:MAX_TERM_LENGTH]
        if value:
            search[field] = value
    return search


def _prefix_q(field: str, prefix: str) -> Q:
    """Starts-with, plus the equivalent range so a btree index on ``field`` can answer it."""
    condition = Q(**{f"{field}__startswith": prefix})
    if prefix.isascii() and prefix.isalnum() and prefix[-1] not in "9zZ":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        condition &= Q(**{f"{field}__gte": prefix, f"{field}__lt": upper})
    return condition


def _number_q(field: str, term: str) -> Q:
    """ORDER # / SERIAL #: ``630*`` is a prefix, anything else a substring (case-insensitive)."""
    if term.endswith("*"):
        prefix = term.rstrip("*")
        if "*" in prefix:
            prefix = prefix.replace("*", "")
        return _prefix_q(field, prefix) if prefix else Q()
    term = term.replace("*", "")
    if not term:
        return Q()
    if len(term) < MIN_SUBSTRING_LENGTH:
        # One or two characters occur inside most numbers: as a substring they would match a
        # tenth of a million devices and need a full scan. They match the beginning instead.
        return _prefix_q(field, term)
    # lower(field) LIKE '%term%': the trigram index is on lower(field) (migration 0008), so the
    # substring search is index-served and case-insensitive at once.
    return Q(Contains(Lower(field), term.lower()))


def is_substring_term(term: str) -> bool:
    """True when ``_number_q`` answers the term with the trigram index (a substring search)."""
    return not term.endswith("*") and len(term.replace("*", "")) >= MIN_SUBSTRING_LENGTH


def has_substring_term(search: Mapping[str, str]) -> bool:
    """Does this search include an ORDER # or SERIAL # substring (a trigram search)?"""
    return any(is_substring_term(search.get(field, "")) for field in ("order", "serial"))


# Planner settings for one statement's transaction (SET LOCAL ends with it), so a substring
# search never depends on the statistics of lower(serial) / lower(order_no). Those estimates
# come from a 100-value histogram and put '%1468%' anywhere between 500 and 10,000 rows of 5
# million: at the high end the planner reads all of an owner's million index entries with a
# filter (166 ms) instead of the trigram index's 2,500 candidates (10 ms), and which one it picks
# changes with every ANALYZE. The code knows better: it has counted the matches.
# The count holds every match in a window (devices.paging.count_and_first_ids): at the default
# 4 MB a result of 100,000 devices spilled to a temporary file (+20-30 ms); 32 MB keeps about
# 500,000 in memory, per request and only for this statement's transaction.
TRIGRAM_PLAN = (  # every match from the trigram index: counting, or a small result in order
    "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; "
    "SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0; "
    "SET LOCAL jit = off; SET LOCAL work_mem = '32MB'"
)
ORDERED_PLAN = (  # a page of a large result: walk the sort index until the page is full
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off; "
    "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off"
)


def owned_by(owner_ids: list[int]) -> QuerySet[Device]:
    """The devices of these organizations, the owner written as the trigram indexes can take it
    (PostgreSQL): ``owner_id = %s::bigint``, or ``= ANY(%s::bigint[])`` for several. Those
    indexes are GIN on (owner_id, lower(...)) (devices 0012), and btree_gin in PostgreSQL 15 has
    no ``bigint = integer`` operator: with the ORM's ``owner_id IN (1)`` (an integer literal)
    the index reads every owner's matches and the heap is read to keep one owner's. The same
    condition as ``devices.access.visible_scope`` writes for a Super User; a btree reads either
    form alike."""
    if connection.vendor != "postgresql":
        return Device.objects.filter(owner_id__in=owner_ids)
    column = f'"{Device._meta.db_table}"."owner_id"'
    if len(owner_ids) == 1:
        condition = RawSQL(  # noqa: S611 - a column name from the model, the id a parameter
            f"{column} = %s::bigint", (int(owner_ids[0]),), output_field=BooleanField()
        )
        return Device.objects.filter(condition)
    return Device.objects.filter(column_in(column, owner_ids))


def scope_for_search(
    user: Any, params: Mapping[str, Any]
) -> tuple[QuerySet[Device], list[int] | None]:
    """``devices.access.visible_scope(user)``, with a Super User's owner condition written by
    ``owned_by`` when ``params`` hold an ORDER # / SERIAL # substring (PostgreSQL): then the
    (owner_id, lower(...)) trigram index reads only their devices' matches. The same devices."""
    from devices.access import visible_scope

    visible, owner_ids = visible_scope(user)
    if owner_ids and connection.vendor == "postgresql" and has_substring_term(clean_search(params)):
        return owned_by(owner_ids), owner_ids
    return visible, owner_ids


@contextmanager
def planned(settings_sql: str | None) -> Iterator[None]:
    """Run the block's queries in one transaction with these planner settings (PostgreSQL);
    with None, or on another database, just run the block."""
    if settings_sql is None or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(settings_sql)
        yield


def distinct_device_types() -> list[str]:
    """Every device type in the table. On PostgreSQL a loose index scan: a few dozen index probes
    instead of reading millions of rows."""
    if connection.vendor == "postgresql":
        table = Device._meta.db_table
        sql = f"""
            WITH RECURSIVE t(v) AS (
                (SELECT device_type FROM {table} ORDER BY device_type LIMIT 1)
                UNION ALL
                SELECT (SELECT device_type FROM {table} WHERE device_type > t.v
                        ORDER BY device_type LIMIT 1)
                FROM t WHERE t.v IS NOT NULL
            )
            SELECT v FROM t WHERE v IS NOT NULL
        """  # noqa: S608 - the table name comes from the model, no user input
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [row[0] for row in cursor.fetchall()]
    return list(Device.objects.order_by().values_list("device_type", flat=True).distinct())


def matching_types(term: str) -> list[str]:
    needle = term.casefold()
    return [t for t in distinct_device_types() if needle in t.casefold()]


def _owner_q(term: str) -> Q:
    matches = Organization.objects.filter(name__icontains=term).values_list("id", flat=True)
    ids = list(matches[: MAX_OWNER_IDS_INLINE + 1])
    if len(ids) > MAX_OWNER_IDS_INLINE:
        return Q(owner_id__in=matches)
    return Q(owner_id__in=ids)


def search_q(search: Mapping[str, str]) -> Q:
    """One condition for a cleaned search; the terms are combined with AND."""
    condition = Q()
    if search.get("order"):
        condition &= _number_q("order_no", search["order"])
    if search.get("serial"):
        condition &= _number_q("serial", search["serial"])
    if search.get("type"):
        condition &= Q(device_type__in=matching_types(search["type"]))
    if search.get("owner"):
        condition &= _owner_q(search["owner"])
    return condition
