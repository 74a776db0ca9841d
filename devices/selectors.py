"""Reads about devices: how many customers read each device, exact counts of a device list.
Who may see, manage and download what is answered in ``devices.access``."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Organization
from devices.access import active_registrations, live_read_rights
from devices.models import Device
from kamkeys.prepared import PreparedQuery
from kamkeys.sqlarrays import column_in


def _readers_sql(device_ids: list[int], now: datetime) -> tuple[str, tuple[object, ...]]:
    on_page = column_in("device_id", device_ids)
    readers = (
        live_read_rights(now=now)
        .filter(on_page)
        .order_by()
        .annotate(reader=F("grantee_id"))
        .values_list("device_id", "reader")
        .union(
            active_registrations()
            .filter(on_page)
            .order_by()
            .annotate(reader=F("user_id"))
            .values_list("device_id", "reader"),
            all=True,
        )
    )
    sql, params = readers.query.sql_with_params()
    return (
        "SELECT device_id, COUNT(DISTINCT reader) "  # noqa: S608 - SQL built by the ORM
        f"FROM ({sql}) AS readers GROUP BY device_id",
        params,
    )


# Asked for every page a Super User sees: compiled once per process (kamkeys.prepared).
_READERS = PreparedQuery(_readers_sql, arrays=("device_ids",))


def reader_counts(device_ids: list[int]) -> dict[int, int]:
    """How many customers can read each device, for the "Customers" column: a working read
    right or a self-registration the owner has not ended, a customer with both counted once.
    One query for a page of rows, from the same rules ``devices.access.visible_devices`` applies."""
    if not device_ids:
        return {}
    return dict(_READERS.run(device_ids=device_ids, now=timezone.now()))


def count_devices(
    queryset: QuerySet[Device], search: dict[str, str], owner_ids: list[int] | None
) -> int:
    """Exact count of a (searched) device list. When the list is "everything these organizations
    own", optionally narrowed by TYPE and TRANSFERRED TO, the trigger-maintained per-(owner,
    type) counts answer without reading up to a million index entries; searches on ORDER # or
    SERIAL # are counted for real, a substring search as the My devices page counts it
    (``_substring_count``). ``owner_ids`` given means the queryset is exactly these
    organizations' devices with ``search`` applied."""
    from devices.counts import owned_count
    from devices.search import has_substring_term, matching_types

    if owner_ids and has_substring_term(search):
        counted = _substring_count(owner_ids, search)
        if counted is not None:
            return counted

    if owner_ids and set(search) <= {"owner", "type"}:
        ids = owner_ids
        if "owner" in search:
            ids = list(
                Organization.objects.filter(
                    pk__in=owner_ids, name__icontains=search["owner"]
                ).values_list("pk", flat=True)
            )
        types = matching_types(search["type"]) if "type" in search else None
        if not ids or types == []:
            return 0
        counted = owned_count(ids, types)
        if counted is not None:
            return counted
    return queryset.order_by().count()


def _substring_count(owner_ids: list[int], search: dict[str, str]) -> int | None:
    """A substring search over these organizations' devices, counted with the planner settings
    and the owner condition the page uses (``devices.search``: only the owners' matches are read
    from the (owner_id, lower(...)) trigram index), and kept a minute when large, in the same
    cache entry the page reads (``devices.counts``). The selected count beside every page of a
    "Select all in this search" selection comes from here: without this it ran unplanned, an
    integer ``owner_id IN (1)`` the trigram index cannot take (224 ms for '273' at 5,000,000).
    An ORDER # search (alone or with TRANSFERRED TO) is summed from the per-(owner, order
    number) counts instead (``devices.counts.order_search_count``). None on another database
    (no trigram index: the caller counts the queryset)."""
    from django.db import connection

    from devices.counts import cached_search_count, keep_search_count, order_search_count
    from devices.paging import SMALL_RESULT
    from devices.search import TRIGRAM_PLAN, owned_by, planned, search_q

    if connection.vendor != "postgresql":
        return None
    total = order_search_count(owner_ids, search)  # an ORDER # search: from the order counts
    if total is not None:
        return total
    total, key = cached_search_count(owner_ids, search)
    if total is not None:
        return total
    with planned(TRIGRAM_PLAN):
        total = owned_by(owner_ids).filter(search_q(search)).order_by().count()
    if total > SMALL_RESULT:  # as the page keeps it: a small result's pages come from its ids
        keep_search_count(key, total)
    return total
