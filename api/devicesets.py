"""Which devices a request names: serials (each checked and reported on its own) or a search,
always inside a device set the access module gave (visible or manageable)."""

from __future__ import annotations

import queue
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from api import access
from api.problems import Problem
from devices.forms import SERIAL_RE
from devices.models import Device
from devices.search import clean_search, search_q
from kamkeys.sqlarrays import can_repeat_rows, column_in, packed_ids_sql, unpack_ids


@dataclass
class DeviceSet:
    """The devices a request names: as ids read in its scope (serials, a search), the queryset
    of them built only when a caller wants one (the read-rights writes; a file is written from
    the ids)."""

    ids: Sequence[int]  # ascending and distinct
    unknown_serials: list[str] = field(default_factory=list)
    invalid_serials: list[str] = field(default_factory=list)
    queryset: QuerySet[Device] | None = None

    @property
    def devices(self) -> QuerySet[Device]:
        if self.queryset is None:
            self.queryset = _with_ids(self.ids)
        return self.queryset


# The serials of a request to the ids of the scope's devices that carry them, in one statement:
# the ids come back packed in one value (kamkeys.sqlarrays.packed_ids_sql, no Python object per
# row, like keyfiles.keystream.selected_ids). The scope is the access module's queryset, compiled by
# the ORM; the serials are one text[] parameter, which PostgreSQL plans as a constant: a few
# serials are probed in the (owner, serial) index, many are looked up in a hash table of them as
# the organization's index is read (99,000 of 1,000,000: a third faster than joining the
# serials' unnest, which hashed the organization's million rows instead). It answers how many
# distinct serials matched (two manufacturers may share a serial): only when that is fewer than
# were asked for does a second statement say which (no 100,000 strings to compare in Python for
# a request that names only known devices). Both aggregates read the scan once (a materialized
# CTE read twice cost 20-30 ms more for 100,000). Planner settings for these statements only
# (SET LOCAL): no parallel workers (each would build that hash table again, on the core this
# process needs), and work_mem for the aggregates' two sorts of 100,000 values, which at the
# default 4 MB spilled to temporary files (+60-100 ms before a file's first byte).
# {ids}: packed_ids_sql, with DISTINCT only when the scope's query joins (a customer's rights).
# The distinct count sorts the matched serials: as "C" (bytes; the same distinctness as any
# deterministic collation) that sort skips the database collation's comparisons (20-50 ms of
# 100,000).
_FIND_SQL = (
    'SELECT {ids}, count(DISTINCT d.serial COLLATE "C") '
    "FROM ({scope}) AS d(id, serial) WHERE d.serial = ANY(%s::text[])"
)
# Only when some serial matched nothing: which (the serials found, comma-separated).
_FOUND_SQL = (
    "SELECT string_agg(d.serial, ',') FROM ({scope}) AS d(id, serial) "
    "WHERE d.serial = ANY(%s::text[])"
)
_FIND_PLAN_SQL = (
    "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off; "
    "SET LOCAL work_mem = '32MB'"
)


def split_serials(serials: Iterable[str]) -> tuple[list[str], list[str]]:
    """The distinct serials in the order sent: (well-formed, malformed). A request of
    well-formed serials only is checked in a few loops of C (8 characters each, and all of them
    together ASCII digits: 100,000 in a few milliseconds, where a regular expression per serial
    took 60-90); one with a malformed serial is sorted out serial by serial."""
    distinct = list(dict.fromkeys(serials))
    if set(map(len, distinct)) == {8}:
        joined = "".join(distinct)
        if joined.isascii() and joined.isdigit():
            return distinct, []
    valid: list[str] = []
    invalid: list[str] = []
    for serial in distinct:
        (valid if serial.isascii() and SERIAL_RE.fullmatch(serial) else invalid).append(serial)
    return valid, invalid


def find_serials(scope: QuerySet[Device], serials: list[str]) -> tuple[array[int], list[str]]:
    """The ids (ascending) of the scope's devices with these distinct serials, well-formed
    (``split_serials``), and
    the serials that name no device in the scope (in the order given), whether or not they
    exist elsewhere."""
    ids: array[int] = array("q")
    if not serials:
        return ids, []
    if connection.vendor != "postgresql":
        rows = (
            scope.filter(column_in("serial", serials, "text"))
            .order_by()
            .values_list("pk", "serial")
        )
        found: set[str] = set()
        for pk, serial in rows.iterator(chunk_size=20_000):
            ids.append(pk)
            found.add(serial)
        ids = array("q", sorted(set(ids)))
        return ids, [serial for serial in serials if serial not in found]
    query = scope.order_by().values_list("pk", "serial").query
    try:
        sql, params = query.sql_with_params()
    except EmptyResultSet:  # a scope that can match nothing (no visible device at all)
        return ids, list(serials)
    packed_sql = packed_ids_sql("d.id", distinct=can_repeat_rows(query))
    # Well-formed serials (split_serials) hold no quote or backslash to escape. The literal goes
    # as a bound parameter (server-side binding), not spliced into the statement's text as
    # Django's cursor would: no escaped copies of its megabyte at the request's peak memory.
    literal = '{"' + '","'.join(serials) + '"}'
    found_text = None
    # Results in binary (as keyfiles.keystream.selected_ids reads them): the packed ids as
    # text would arrive hex-escaped, twice their size, and be decoded into another copy.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_FIND_PLAN_SQL)
        with psycopg.Cursor(cursor.connection) as bound:
            bound.execute(
                _FIND_SQL.format(ids=packed_sql, scope=sql), [*params, literal], binary=True
            )
            packed, matched = bound.fetchone() or (None, 0)
            if matched < len(serials):
                bound.execute(_FOUND_SQL.format(scope=sql), [*params, literal], binary=True)
                (found_text,) = bound.fetchone() or (None,)
    del literal
    ids = unpack_ids(packed)
    if matched == len(serials):
        return ids, []
    found = set(found_text.split(",")) if found_text else set()  # serials hold no comma
    return ids, [serial for serial in serials if serial not in found]


def by_serials(scope: QuerySet[Device], serials: list[str]) -> DeviceSet:
    """The devices of ``scope`` with these serials. A serial that is malformed is "invalid"; one
    that names no device in scope is "unknown", whether or not it exists elsewhere."""
    valid, invalid = split_serials(serials)
    ids, unknown = find_serials(scope, valid)
    # Later reads find these devices by id, one primary-key probe each: the ids were read inside
    # the scope in this same request (the read-rights services also check ownership in their
    # own SQL). Re-reading them through the scope cost a second scan of the organization.
    return DeviceSet(ids, unknown, invalid)


def _joined(ids: Sequence[int], size: int) -> Iterator[str]:
    for start in range(0, len(ids), size):
        yield ",".join(map(str, ids[start : start + size]))


def _with_ids(ids: Sequence[int]) -> QuerySet[Device]:
    """The devices with these ids. On PostgreSQL the array sits behind a sub-select, so the
    planner does not weigh 100,000 constants one by one (~70 ms of planning, and a slower plan,
    for every statement built on this set: the download's, the read-rights writes')."""
    if not ids:
        return Device.objects.none()
    if connection.vendor != "postgresql":
        return Device.objects.filter(column_in("id", list(ids)))
    # Joined 10,000 at a time: one join of 100,000 would hold a list of their texts (5 MB) at
    # the request's peak.
    literal = "{" + ",".join(_joined(ids, 10_000)) + "}"
    return Device.objects.filter(
        RawSQL("id = ANY((SELECT %s::bigint[])::bigint[])", (literal,), BooleanField())
    )


Part = tuple[Sequence[int], list[str]]  # ids (ascending) and the serials that named none


@dataclass
class Parts:
    """A keys request's devices, found part by part as a stream reaches them."""

    parts: Iterator[Part]
    invalid_serials: list[str]
    several: bool  # more than one part


def part_bounds(count: int, sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Where a serials request's parts begin and end: the first ``sizes[0]`` serials, the next
    ``sizes[1]``, ..., then the rest (fewer parts for fewer serials)."""
    bounds, start = [], 0
    for size in sizes:
        if start < count:
            bounds.append((start, min(count, start + size)))
            start += size
    if start < count:
        bounds.append((start, count))
    return bounds


LOOKUP_JOIN_SECONDS = 30  # how long closing a stream waits for its lookup thread at most


class _LookedUpAhead:
    """``find_serials`` of each chunk, in order, run ahead in a thread on a connection of its
    own, started at once: PostgreSQL looks up the later serials (100,000 of a million: 250-400
    ms) while the stream unwraps and writes the earlier parts' keys, instead of after them.
    ``close`` stops the thread once its current statement ends and waits until it has closed
    its connection: no connection outlives the request that opened it."""

    def __init__(self, scope: QuerySet[Device], chunks: list[list[str]]) -> None:
        self.chunks = chunks
        self.results: queue.SimpleQueue[Part | BaseException] = queue.SimpleQueue()
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._look_up, args=(scope,), name="kamkeys-serials-lookup", daemon=True
        )
        self.thread.start()

    def _look_up(self, scope: QuerySet[Device]) -> None:
        try:
            for chunk in self.chunks:
                if self.stopped.is_set():
                    return
                self.results.put(find_serials(scope, chunk))
        except BaseException as error:  # noqa: BLE001 - raised again in the stream's thread
            self.results.put(error)
        finally:
            connection.close()  # this thread's own

    def __iter__(self) -> Iterator[Part]:
        for _ in self.chunks:
            result = self.results.get()
            if isinstance(result, BaseException):
                raise result
            yield result

    def close(self) -> None:
        self.stopped.set()
        # Bounded: a statement the database never answers must not hold the worker's thread.
        self.thread.join(timeout=LOOKUP_JOIN_SECONDS)


def _can_look_up_ahead() -> bool:
    """A second connection sees what this one sees only outside a transaction (a test's
    transaction, an atomic view), and only PostgreSQL serves two connections at once well."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def in_parts(
    user: Any, scope: QuerySet[Device], data: dict[str, Any], *, sizes: Sequence[int]
) -> Parts:
    """The devices of a keys request: for serials, those of the first ``sizes[0]`` serials,
    then those of each next size of ``sizes``, then those of the rest; a search is one part.
    On PostgreSQL the later parts are looked up ahead, one after the other on a second
    connection, while the earlier ones stream (``_LookedUpAhead``); elsewhere each when the
    caller asks for it."""
    if "serials" not in data:
        return Parts(iter([(resolve(user, scope, data).ids, [])]), [], several=False)
    valid, invalid = split_serials(data["serials"])
    chunks = [valid[start:end] for start, end in part_bounds(len(valid), sizes)] or [[]]

    def parts() -> Iterator[Part]:
        later = chunks[1:]
        # Started before the first part's lookup, so the second part's overlaps it too.
        ahead = _LookedUpAhead(scope.all(), later) if later and _can_look_up_ahead() else None
        try:
            yield find_serials(scope, chunks[0])
            if ahead is not None:
                yield from ahead
            else:
                for chunk in later:
                    yield find_serials(scope, chunk)
        finally:
            if ahead is not None:
                ahead.close()

    return Parts(parts(), invalid, several=len(chunks) > 1)


def changed_since_q(user: Any, scope: QuerySet[Device], since: datetime) -> Q:
    return access.visible_changed_since(user, scope, since)


def by_search(user: Any, scope: QuerySet[Device], params: dict[str, Any]) -> QuerySet[Device]:
    """My devices' column searches, plus changed_since."""
    devices = scope.filter(search_q(clean_search(params)))
    if params.get("changed_since") is not None:
        devices = devices.filter(changed_since_q(user, scope, params["changed_since"]))
    return devices


def resolve(user: Any, scope: QuerySet[Device], data: dict[str, Any]) -> DeviceSet:
    """The device set of a keys or read-rights request, at most KAMKEYS_API_MAX_SERIALS."""
    if "serials" in data:
        return by_serials(scope, data["serials"])
    devices = by_search(user, scope, data["search"])
    limit = settings.KAMKEYS_API_MAX_SERIALS
    ids = list(devices.order_by().values_list("pk", flat=True)[: limit + 1])
    if len(ids) > limit:
        raise Problem(
            400,
            f"The search matches more than {limit:,} devices. Narrow it (e.g. with "
            "changed_since or a serial prefix) or send serial numbers.",
            title="Too many devices",
        )
    return DeviceSet(sorted(ids), queryset=devices)


def release_serials(*bodies: Any) -> None:
    """Empty the serial lists of a request's parsed and validated bodies once they have been
    looked up: a file streams for a second or more while the request, and with it 100,000
    serial strings (8 MB), stays alive until the last byte."""
    for body in bodies:
        serials = body.get("serials") if isinstance(body, dict) else None
        if isinstance(serials, list):
            serials.clear()


def refuse_unknown(device_set: DeviceSet) -> None:
    """A write (or a file) names only devices it can act on: otherwise a 400 listing them."""
    if device_set.unknown_serials or device_set.invalid_serials:
        raise Problem(
            400,
            "Some serial numbers are malformed or name no device you may use; nothing was done.",
            title="Unknown or malformed serial numbers",
            unknown_serials=device_set.unknown_serials,
            invalid_serials=device_set.invalid_serials,
        )
