"""Key custody: store keys wrapped, unwrap them one at a time or as a stream.

This module and the file writers are the only places plain key bytes exist, and only in memory.
Other apps pass devices in and get files out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import QuerySet

from audit import services as audit
from audit.models import Action
from devices.models import Device
from keyvault.crypto import KeyUnwrapError, key_unwrapper, unwrap_key, wrap_key
from keyvault.kek import KekRingError, get_kek_source
from keyvault.models import DeviceKey

# The device columns a file writer needs; iter_plain_keys yields them as a dict.
DEVICE_FIELDS = (
    "id",
    "manufacturer",
    "serial",
    "kind",
    "device_type",
    "type_no",
    "config_no",
    "consumption_type",
    "production_year",
    "order_no",
    "owner_id",
)
KEY_NAMES = ("DEK", "GPK1", "GPK2", "GPK3", "GPK4")
# Devices unwrapped at a time by iter_plain_keys. Small on purpose: a batch of 5,000 devices
# (rows, dicts, keys) outgrows the CPU caches and survives into the collector's oldest generation,
# so every few batches a full collection rescans the process; 100,000 keys streamed and
# unwrapped took 1.3-1.7 s with 5,000 and 0.65 s with 500 here.
DEFAULT_BATCH_SIZE = 500


def _wrapped_rows(device: Device, keys: Mapping[str, bytes]) -> list[DeviceKey]:
    version, kek = get_kek_source().current()
    rows = []
    for name, key in keys.items():
        if not name or len(name) > 16:
            raise ValueError("a key name is 1 to 16 characters")
        rows.append(
            DeviceKey(
                device=device,
                name=name,
                wrapped=wrap_key(kek, version, device.serial, name, bytes(key)),
                kek_version=version,
            )
        )
    return rows


def store_device_keys(device: Device, keys: Mapping[str, bytes]) -> None:
    """Create or replace the named keys of one device, wrapped under the newest KEK."""
    rows = _wrapped_rows(device, keys)
    with transaction.atomic():
        DeviceKey.objects.filter(device=device, name__in=list(keys)).delete()
        DeviceKey.objects.bulk_create(rows)


def store_device_keys_bulk(
    items: Iterable[tuple[Device, Mapping[str, bytes]]], *, batch_size: int = 5000
) -> int:
    """The same for many devices (importers, seed data), in one transaction. Returns the number
    of keys stored."""
    stored = 0
    with transaction.atomic():
        batch: list[DeviceKey] = []
        replaced: dict[int, list[str]] = {}

        def flush() -> None:
            nonlocal stored
            for device_id, names in replaced.items():
                DeviceKey.objects.filter(device_id=device_id, name__in=names).delete()
            DeviceKey.objects.bulk_create(batch, batch_size=batch_size)
            stored += len(batch)
            batch.clear()
            replaced.clear()

        for device, keys in items:
            batch.extend(_wrapped_rows(device, keys))
            replaced.setdefault(device.pk, []).extend(keys)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return stored


def _audit_unwrap_failure(device_id: int, name: str, kek_version: int, reason: str) -> None:
    audit.record(
        Action.UNWRAP_FAILED,
        actor_label="system",
        object_type="device",
        object_ids=[device_id],
        count=1,
        outcome="error",
        detail={"key_name": name, "kek_version": kek_version, "reason": reason},
    )


def _unwrap_row(device_id: int, serial: str, name: str, version: int, wrapped: bytes) -> bytes:
    try:
        kek = get_kek_source().get(version)
    except KekRingError:
        _audit_unwrap_failure(device_id, name, version, "KEK version not in the ring")
        raise KeyUnwrapError(f"key {name} of serial {serial}: KEK v{version} is unknown") from None
    try:
        return unwrap_key(kek, version, serial, name, wrapped)
    except KeyUnwrapError:
        _audit_unwrap_failure(device_id, name, version, "integrity check failed")
        raise


def unwrap(device_key: DeviceKey) -> bytes:
    """The plain bytes of one stored key; KeyUnwrapError (audited) if it was tampered with."""
    if DeviceKey.device.is_cached(device_key):
        serial = device_key.device.serial
    else:
        serial = (
            Device.objects.filter(pk=device_key.device_id).values_list("serial", flat=True).first()
        ) or ""
    return _unwrap_row(
        device_key.device_id,
        serial,
        device_key.name,
        device_key.kek_version,
        bytes(device_key.wrapped),
    )


def plain_keys_of(device: Device) -> dict[str, bytes]:
    """All keys of one device, unwrapped (for comparisons in the importer and in tests)."""
    return stored_plain_keys({device.pk: device.serial}).get(device.pk, {})


def stored_plain_keys(serials: Mapping[int, str]) -> dict[int, dict[str, bytes]]:
    """{device id: {key name: plain bytes}} for a batch of devices given as {id: serial}, in
    one query. KeyUnwrapError (audited) if any key fails its integrity check."""
    result: dict[int, dict[str, bytes]] = {}
    rows = DeviceKey.objects.filter(device_id__in=list(serials)).values_list(
        "device_id", "name", "kek_version", "wrapped"
    )
    for device_id, name, version, wrapped in rows:
        plain = _unwrap_row(device_id, serials[device_id], name, version, bytes(wrapped))
        result.setdefault(device_id, {})[name] = plain
    return result


def _keys_of(device_ids: list[int]) -> list[tuple[int, str, int, bytes]]:
    """(device id, name, KEK version, wrapped) of a batch of devices."""
    return list(
        DeviceKey.objects.filter(device_id__in=device_ids).values_list(
            "device_id", "name", "kek_version", "wrapped"
        )
    )


class _Unwrappers(dict[int, Callable[[str, str, bytes], bytes]]):
    """One ``key_unwrapper`` per KEK version met in a stream."""

    def of(self, device_id: int, serial: str, name: str, version: int) -> Any:
        unwrapper = self.get(version)
        if unwrapper is None:
            try:
                kek = get_kek_source().get(version)
            except KekRingError:
                error = KeyUnwrapError(f"key {name} of serial {serial}: KEK v{version} is unknown")
                raise _BatchUnwrapError(
                    device_id, name, version, error, "KEK version not in the ring"
                ) from None
            unwrapper = self[version] = key_unwrapper(kek, version)
        return unwrapper


def _unwrap_batch(
    rows: list[tuple[Any, ...]], unwrappers: _Unwrappers
) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """Rows of (DEVICE_FIELDS..., key name, KEK version, wrapped), a device's keys adjacent and
    a device without keys once with NULL key columns, turned into (device values, plain keys).
    The whole batch is unwrapped before any of it is handed out. On a failure the caller is
    told which key failed (it audits once the connection is free)."""
    width = len(DEVICE_FIELDS)
    devices: list[tuple[tuple[Any, ...], dict[str, bytes]]] = []
    last_id = None
    keys: dict[str, bytes] = {}
    for row in rows:
        if row[0] != last_id:
            last_id = row[0]
            keys = {}
            devices.append((row, keys))
        name = row[width]
        if name is None:
            continue
        version = row[width + 1]
        unwrap_one = unwrappers.get(version) or unwrappers.of(last_id, row[2], name, version)
        try:
            keys[name] = unwrap_one(row[2], name, row[width + 2])
        except KeyUnwrapError as error:
            raise _BatchUnwrapError(
                last_id, name, version, error, "integrity check failed"
            ) from None
    # zip() stops after the device columns: the key columns are left out.
    return [(dict(zip(DEVICE_FIELDS, row, strict=False)), _ordered(keys)) for row, keys in devices]


class _BatchUnwrapError(Exception):
    """Which key of a batch failed, carried out of the stream so it is audited afterwards."""

    def __init__(
        self, device_id: int, name: str, version: int, error: KeyUnwrapError, reason: str
    ) -> None:
        super().__init__(str(error))
        self.device_id, self.name, self.version = device_id, name, version
        self.error, self.reason = error, reason


_STREAM_SQL = (  # noqa: S608 (column names from the constant above)
    "SELECT {fields}, k.name, k.kek_version, k.wrapped FROM devices_device d "
    "LEFT JOIN keyvault_devicekey k ON k.device_id = d.id "
    "WHERE d.id = ANY(%s::bigint[]) ORDER BY d.id"
).format(fields=", ".join(f"d.{name}" for name in DEVICE_FIELDS))


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


def _postgresql_batches(ids: list[int], batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of these devices as one streamed query, cut into batches of whole devices.

    PostgreSQL sends rows as it produces them, on the other core, while this process unwraps
    and writes. The ids go as one text array literal: psycopg would otherwise pick a dumper per
    integer. The connection is busy until the stream ends or this generator is closed."""
    literal = "{" + ",".join(map(str, ids)) + "}"
    size = batch_size if psycopg.capabilities.has_stream_chunked() else 1
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.connection.transaction():
            raw.execute(_STREAM_PLAN_SQL)
            stream = raw.stream(_STREAM_SQL, [literal], size=size)
            try:
                batch: list[tuple[Any, ...]] = []
                devices = 0
                last_id = None
                for row in stream:
                    if row[0] != last_id:
                        if devices >= batch_size:
                            yield batch
                            batch = []
                            devices = 0
                        devices += 1
                        last_id = row[0]
                    batch.append(row)
                if batch:
                    yield batch
            finally:
                stream.close()


def _portable_batches(ids: list[int], batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The same rows, batch by batch, for databases without streaming (SQLite)."""
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        devices = Device.objects.filter(pk__in=chunk).order_by("pk").values_list(*DEVICE_FIELDS)
        keys: dict[int, list[tuple[str, int, bytes]]] = {}
        for device_id, name, version, wrapped in _keys_of(chunk):
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
    ids: list[int] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    """Yield (device values, {key name: plain bytes}) for every device of the queryset, in
    primary-key order. Memory stays constant however large the selection: rows arrive as a
    stream (PostgreSQL) or per batch, and are unwrapped ``batch_size`` devices at a time. A
    device without stored keys yields an empty dict. A key that fails to unwrap stops the
    stream with KeyUnwrapError (audited); its bytes are never yielded.

    ``ids``: the selection's device ids in ascending order, when the caller already has them
    (the download records them for the audit); devices removed meanwhile are skipped. While
    this generator is suspended mid-stream the database connection is busy: finish or close
    it before running other queries."""
    if ids is None:
        ids = list(devices_qs.order_by("pk").values_list("pk", flat=True))
    if not ids:
        return
    if connection.vendor == "postgresql":
        batches = _postgresql_batches(ids, batch_size)
    else:
        batches = _portable_batches(ids, batch_size)
    unwrappers = _Unwrappers()
    failure: _BatchUnwrapError | None = None
    try:
        for rows in batches:
            try:
                plain = _unwrap_batch(rows, unwrappers)
            except _BatchUnwrapError as error:
                failure = error
                break
            yield from plain
    finally:
        batches.close()
    if failure is not None:
        _audit_unwrap_failure(failure.device_id, failure.name, failure.version, failure.reason)
        raise failure.error


def _ordered(keys: dict[str, bytes]) -> dict[str, bytes]:
    """DEK first, then GPK1…GPK4, then anything else by name: stable file output."""
    if len(keys) < 2:
        return keys
    rank = {name: index for index, name in enumerate(KEY_NAMES)}
    return dict(sorted(keys.items(), key=lambda item: (rank.get(item[0], 99), item[0])))
