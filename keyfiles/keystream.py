"""The download's key stream: the device columns a file needs, with their keys unwrapped.

On PostgreSQL it is one streamed query joining devices to their wrapped keys; the wrapped bytes
go to ``keyvault.services.unwrap_stream``, the only code here that sees a KEK. Elsewhere
(SQLite) the same rows are read batch by batch.
"""

from __future__ import annotations

import json
from array import array
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from devices.models import Device
from kamkeys.sqlarrays import can_repeat_rows, packed_ids_sql, unpack_ids
from keyvault.models import DeviceKey
from keyvault.services import DEFAULT_BATCH_SIZE, unwrap_stream, wrapped_keys_of

# The device columns a file writer gets, from Device._meta: all but the device code hash and
# the creation and change times. plain_keys_of yields them as a DeviceRow.
DEVICE_FIELDS = Device.columns(exclude=("device_code_hash", "created_at", "changed_at"))
_SERIAL_AT = DEVICE_FIELDS.index("serial")

# A streamed device's columns by name (row.serial, row.device_type, ...): a tuple, so making
# one from the query's row costs a tenth of a dict of its columns (~2.5 µs a device on this
# machine, a tenth of a million-key export).
DeviceRow = namedtuple("DeviceRow", DEVICE_FIELDS)  # type: ignore[misc]
_device_row = partial(tuple.__new__, DeviceRow)


# (JSON member, device column): the members a type's devices share, in document order; keys.json
# writes these, the API's keys add production_year.
TYPE_JSON_MEMBERS: tuple[tuple[str, str], ...] = (
    ("manufacturer", "manufacturer"),
    ("kind", "kind"),
    ("type", "device_type"),
    ("type_no", "type_no"),
    ("config_no", "config_no"),
    ("consumption_type", "consumption_type"),
)


def json_members(members: Sequence[tuple[str, str]]) -> Callable[[Any], str]:
    """For the JSON writers (keys.json, the API's keys): a function giving a DeviceRow's
    ``"member": value, ...`` for these (JSON member, device column) pairs, in order. Devices of
    one type share these values, so each combination is encoded once."""
    values_of = attrgetter(*(column for _member, column in members))

    @lru_cache(maxsize=4096)
    def encoded(values: tuple[Any, ...]) -> str:
        return ", ".join(
            f"{json.dumps(member)}: {json.dumps(value, ensure_ascii=False)}"
            for (member, _column), value in zip(members, values, strict=True)
        )

    return lambda row: encoded(values_of(row))


_STREAM_SQL = (  # noqa: S608 (table and column names from the models)
    "SELECT {fields}, k.name, k.kek_version, k.wrapped FROM {devices} d "
    "LEFT JOIN {keys} k ON k.device_id = d.id "
    "WHERE d.id = ANY(%s::bigint[]) ORDER BY d.id"
).format(
    fields=", ".join(f"d.{name}" for name in DEVICE_FIELDS),
    devices=Device._meta.db_table,
    keys=DeviceKey._meta.db_table,
)


# For the stream above only (SET LOCAL, inside the stream's own transaction): a merge join of
# the two primary-key-ordered index scans sends its first row at once and the rest while this
# process unwraps. Left to itself, for a selection of a tenth of the table the planner prefers
# parallel sequential scans, a hash join and a sort: cheaper in total, but nothing arrives for half
# a second (99,000 of 1,000,000 devices: first row after 510 ms, all in 610 ms; steered: 35 ms and
# 270 ms), and its workers take the core this process needs.
_STREAM_PLAN_SQL = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_sort = off; "
    "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off"
)


# Ids per streamed query: the literal of a million ids as one string would be 8 MB, and the
# list of their texts that builds it 60 MB more.
IDS_PER_QUERY = 50_000


def _postgresql_batches(ids: Sequence[int], batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of these devices as streamed queries (one per IDS_PER_QUERY ids, in one
    transaction), cut into batches of whole devices.

    PostgreSQL sends rows as it produces them, on the other core, while this process unwraps
    and writes. The ids go as one text array literal: psycopg would otherwise pick a dumper per
    integer. The connection is busy until the stream ends or this generator is closed."""
    size = batch_size if psycopg.capabilities.has_stream_chunked() else 1
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.connection.transaction():
            raw.execute(_STREAM_PLAN_SQL)
            batch: list[tuple[Any, ...]] = []
            devices = 0
            last_id = None
            for start in range(0, len(ids), IDS_PER_QUERY):
                literal = "{" + ",".join(map(str, ids[start : start + IDS_PER_QUERY])) + "}"
                stream = raw.stream(_STREAM_SQL, [literal], size=size)
                try:
                    for row in stream:
                        if row[0] != last_id:
                            if devices >= batch_size:
                                yield batch
                                batch = []
                                devices = 0
                            devices += 1
                            last_id = row[0]
                        batch.append(row)
                finally:
                    stream.close()
            if batch:
                yield batch


def selected_ids(devices_qs: QuerySet[Device]) -> array[int]:
    """The ids of the queryset's devices, distinct and ascending, as 8-byte integers (8 MB for
    a million, where a list of Python ints takes 36 MB). On PostgreSQL they arrive as one value
    (``kamkeys.sqlarrays.packed_ids_sql``)."""
    ids: array[int] = array("q")
    if connection.vendor != "postgresql":
        ids.extend(sorted(set(devices_qs.order_by().values_list("pk", flat=True))))
        return ids
    query = devices_qs.order_by().values_list("pk").query
    try:
        sql, params = query.sql_with_params()
    except EmptyResultSet:  # a condition that can match nothing (an empty selection)
        return ids
    # The SQL is the ORM's.
    packed_sql = packed_ids_sql("d.id", distinct=can_repeat_rows(query))
    packed = f"SELECT {packed_sql} FROM ({sql}) AS d (id)"  # noqa: S608
    connection.ensure_connection()
    # In binary, which Django's client-side-binding cursors cannot ask for: as text the value
    # would arrive hex-escaped, twice its size, and be decoded into a third copy.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(packed, params, binary=True)
        row = cursor.fetchone()
    return unpack_ids(row[0] if row else None)


def _portable_batches(ids: Sequence[int], batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The same rows, batch by batch, for databases without streaming (SQLite)."""
    for start in range(0, len(ids), batch_size):
        chunk = list(ids[start : start + batch_size])
        devices = Device.objects.filter(pk__in=chunk).order_by("pk").values_list(*DEVICE_FIELDS)
        keys: dict[int, list[tuple[str, int, bytes]]] = {}
        for device_id, name, version, wrapped in wrapped_keys_of(chunk):
            keys.setdefault(device_id, []).append((name, version, bytes(wrapped)))
        rows: list[tuple[Any, ...]] = []
        for device in devices:
            for key in keys.get(device[0], [(None, None, None)]):
                rows.append((*device, *key))
        if rows:
            yield rows


def iter_plain_keys(
    devices_qs: QuerySet[Device],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    ids: Sequence[int] | None = None,
) -> Iterator[tuple[Any, dict[str, bytes]]]:
    """``plain_keys_of`` every device of the queryset (or of ``ids``, the selection's device
    ids in ascending order, when the caller already has them)."""
    if ids is None:
        ids = list(devices_qs.order_by("pk").values_list("pk", flat=True))
    return plain_keys_of(ids, batch_size)


def plain_keys_of(
    ids: Sequence[int], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[Any, dict[str, bytes]]]:
    """Yield (DeviceRow, {key name: plain bytes}) for the devices with these ids (ascending;
    read inside the actor's scope by the caller), in primary-key order; devices removed
    meanwhile are skipped. Memory stays constant however large the selection: rows arrive as a
    stream (PostgreSQL) or per batch, and are unwrapped ``batch_size`` devices at a time. A
    device without stored keys yields an empty dict. A key that fails to unwrap stops the
    stream with KeyUnwrapError (audited); its bytes are never yielded. While this generator is
    suspended mid-stream the database connection is busy: finish or close it before running
    other queries."""
    if not ids:
        return
    if connection.vendor == "postgresql":
        batches = _postgresql_batches(ids, batch_size)
    else:
        batches = _portable_batches(ids, batch_size)
    width = len(DEVICE_FIELDS)
    make_row = _device_row
    stream = unwrap_stream(batches, serial_at=_SERIAL_AT, key_at=width)
    try:
        for row, keys in stream:
            yield make_row(row[:width]), keys  # the key columns are left out
    finally:
        stream.close()  # closes the query's stream too, at once
