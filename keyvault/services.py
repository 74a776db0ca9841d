"""Key custody: store keys wrapped, unwrap them one at a time or as a stream.

keyvault knows a device only by its id and serial (the wrap is bound to the serial). This module
and the file writers in ``keyfiles`` are the only places plain key bytes exist, and only in
memory. ``keyfiles.keystream`` joins the device columns a file needs to the keys and hands the
wrapped bytes to ``unwrap_stream`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, Protocol

from django.db import transaction

from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from keyvault.crypto import KeyUnwrapError, key_unwrapper, unwrap_key, wrap_key
from keyvault.kek import KekRingError, get_kek_source
from keyvault.models import DeviceKey

KEY_NAMES = ("DEK", "GPK1", "GPK2", "GPK3", "GPK4")
# Devices unwrapped at a time by a key stream. Small on purpose: a batch of 5,000 devices
# (rows, dicts, keys) outgrows the CPU caches and survives into the collector's oldest generation,
# so every few batches a full collection rescans the process; 100,000 keys streamed and
# unwrapped took 1.3-1.7 s with 5,000 and 0.65 s with 500 here.
DEFAULT_BATCH_SIZE = 500


class KeyHolder(Protocol):
    """A device as custody sees it: its id and its serial (a ``devices.Device``)."""

    pk: Any
    serial: str


def _wrapped_rows(device: KeyHolder, keys: Mapping[str, bytes]) -> list[DeviceKey]:
    version, kek = get_kek_source().current()
    rows = []
    for name, key in keys.items():
        if not name or len(name) > 16:
            raise ValueError("a key name is 1 to 16 characters")
        rows.append(
            DeviceKey(
                # A KeyHolder is a devices.Device, which keyvault may not import (layering).
                device=device,  # type: ignore[misc]
                name=name,
                wrapped=wrap_key(kek, version, device.serial, name, bytes(key)),
                kek_version=version,
            )
        )
    return rows


def store_device_keys(device: KeyHolder, keys: Mapping[str, bytes]) -> None:
    """Create or replace the named keys of one device, wrapped under the newest KEK."""
    rows = _wrapped_rows(device, keys)
    with transaction.atomic():
        # A KeyHolder is a devices.Device, which keyvault may not import (layering).
        DeviceKey.objects.filter(device=device, name__in=list(keys)).delete()  # type: ignore[misc]
        DeviceKey.objects.bulk_create(rows)


def store_device_keys_bulk(
    items: Iterable[tuple[KeyHolder, Mapping[str, bytes]]], *, batch_size: int = 5000
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
        context=AuditContext.system(),
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
        device_model = DeviceKey.device.field.related_model
        assert not isinstance(device_model, str)  # "devices.Device", resolved once apps load
        devices = device_model._default_manager
        serial = (
            devices.filter(pk=device_key.device_id).values_list("serial", flat=True).first()
        ) or ""
    return _unwrap_row(
        device_key.device_id,
        serial,
        device_key.name,
        device_key.kek_version,
        bytes(device_key.wrapped),
    )


def plain_keys_of(device: KeyHolder) -> dict[str, bytes]:
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


# --- the key stream ----------------------------------------------------------------------------


def wrapped_keys_of(device_ids: list[int]) -> list[tuple[int, str, int, bytes]]:
    """(device id, name, KEK version, wrapped) of a batch of devices."""
    return list(
        DeviceKey.objects.filter(device_id__in=device_ids).values_list(
            "device_id", "name", "kek_version", "wrapped"
        )
    )


def iter_stored_keys(
    serials: Mapping[int, str], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[int, dict[str, bytes]]]:
    """Yield (device id, {key name: plain bytes}) for devices given as {id: serial}, in id
    order, ``batch_size`` devices per query; a device without keys yields an empty dict. The
    custody-only stream: ``unwrap_stream`` with nothing but ids and serials."""
    ids = sorted(serials)

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            keys: dict[int, list[tuple[str, int, bytes]]] = {}
            for device_id, name, version, wrapped in wrapped_keys_of(chunk):
                keys.setdefault(device_id, []).append((name, version, bytes(wrapped)))
            yield [
                (device_id, serials[device_id], *key)
                for device_id in chunk
                for key in keys.get(device_id, [(None, None, None)])
            ]

    for row, keys in unwrap_stream(batches(), serial_at=1, key_at=2):
        yield row[0], keys


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
    rows: list[tuple[Any, ...]], unwrappers: _Unwrappers, serial_at: int, key_at: int
) -> list[tuple[tuple[Any, ...], dict[str, bytes]]]:
    """Rows of (device id, ..., key name, KEK version, wrapped), a device's keys adjacent and
    a device without keys once with NULL key columns, turned into (the device's first row,
    plain keys). The whole batch is unwrapped before any of it is handed out. On a failure the
    caller is told which key failed (it audits once the connection is free)."""
    devices: list[tuple[tuple[Any, ...], dict[str, bytes]]] = []
    last_id: Any = None  # the device id of the rows, as the database gives it
    keys: dict[str, bytes] = {}
    for row in rows:
        if row[0] != last_id:
            last_id = row[0]
            keys = {}
            devices.append((row, keys))
        name = row[key_at]
        if name is None:
            continue
        version = row[key_at + 1]
        serial = row[serial_at]
        unwrap_one = unwrappers.get(version) or unwrappers.of(last_id, serial, name, version)
        try:
            keys[name] = unwrap_one(serial, name, row[key_at + 2])
        except KeyUnwrapError as error:
            raise _BatchUnwrapError(
                last_id, name, version, error, "integrity check failed"
            ) from None
    return [(row, keys if len(keys) < 2 else _ordered(keys)) for row, keys in devices]


class _BatchUnwrapError(Exception):
    """Which key of a batch failed, carried out of the stream so it is audited afterwards."""

    def __init__(
        self, device_id: int, name: str, version: int, error: KeyUnwrapError, reason: str
    ) -> None:
        super().__init__(str(error))
        self.device_id, self.name, self.version = device_id, name, version
        self.error, self.reason = error, reason


def unwrap_stream(
    batches: Iterator[list[tuple[Any, ...]]], *, serial_at: int, key_at: int
) -> Generator[tuple[tuple[Any, ...], dict[str, bytes]]]:
    """Unwrap a stream of wrapped keys, batch by batch: yield (the device's row, {key name:
    plain bytes}) per device.

    Each batch is a list of whole devices' rows: the device id first, the serial at
    ``serial_at``, then key name, KEK version and wrapped bytes from ``key_at`` (NULLs once for a
    device without keys); any other columns are the caller's and come back untouched. A batch
    is unwrapped whole before any of it is yielded. A key that fails stops the stream with
    KeyUnwrapError, audited after ``batches`` is closed (so a streaming query has freed the
    connection); its bytes are never yielded. ``batches`` is closed however the stream ends."""
    unwrappers = _Unwrappers()
    failure: _BatchUnwrapError | None = None
    try:
        for rows in batches:
            try:
                plain = _unwrap_batch(rows, unwrappers, serial_at, key_at)
            except _BatchUnwrapError as error:
                failure = error
                break
            yield from plain
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    if failure is not None:
        _audit_unwrap_failure(failure.device_id, failure.name, failure.version, failure.reason)
        raise failure.error


def _ordered(keys: dict[str, bytes]) -> dict[str, bytes]:
    """DEK first, then GPK1…GPK4, then anything else by name: stable file output."""
    if len(keys) < 2:
        return keys
    rank = {name: index for index, name in enumerate(KEY_NAMES)}
    return dict(sorted(keys.items(), key=lambda item: (rank.get(item[0], 99), item[0])))
