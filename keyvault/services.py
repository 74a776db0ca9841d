"""Key custody: store keys wrapped, unwrap them one at a time or as a stream.

This module and the file writers are the only places plain key bytes exist, and only in memory.
Other apps pass devices in and get files out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from devices.models import Device
from keyvault import audit
from keyvault.crypto import KeyUnwrapError, unwrap_key, wrap_key
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
DEFAULT_BATCH_SIZE = 5000


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
        "unwrap_failed",
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
    """(device id, name, KEK version, wrapped) of a batch of devices. On PostgreSQL one array
    parameter: binding thousands of IN (...) placeholders costs more than the query."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT device_id, name, kek_version, wrapped FROM keyvault_devicekey "
                "WHERE device_id = ANY(%s)",
                [device_ids],
            )
            return cursor.fetchall()
    return list(
        DeviceKey.objects.filter(device_id__in=device_ids).values_list(
            "device_id", "name", "kek_version", "wrapped"
        )
    )


def _devices_by_ids(ids: list[int]) -> list[tuple[Any, ...]]:
    """DEVICE_FIELDS of these devices in id order: primary-key lookups, whatever the filter."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(DEVICE_FIELDS)} FROM devices_device "  # noqa: S608
                "WHERE id = ANY(%s) ORDER BY id",
                [ids],
            )
            return cursor.fetchall()
    return list(Device.objects.filter(pk__in=ids).order_by("pk").values_list(*DEVICE_FIELDS))


def iter_plain_keys(
    devices_qs: QuerySet[Device],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    ids: list[int] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    """Yield (device values, {key name: plain bytes}) for every device of the queryset, in
    primary-key order. Per batch two index-friendly queries: the next ``batch_size`` devices
    (keyset pagination on the primary key: no server-side cursor to leak when a consumer stops
    early) and their keys. Memory stays constant however large the selection. A device without
    stored keys yields an empty dict. A key that fails to unwrap stops the stream with
    KeyUnwrapError (audited); its bytes are never yielded.

    ``ids``: the selection's device ids in ascending order, when the caller already has them
    (the download records them for the audit): batches are then primary-key lookups, which
    stay fast for filters no index serves in primary-key order."""
    width = len(DEVICE_FIELDS)
    base = devices_qs.order_by().values_list(*DEVICE_FIELDS)
    ring = get_kek_source()
    keks: dict[int, bytes] = {}
    last_id = 0
    position = 0
    while True:
        if ids is not None:
            chunk = ids[position : position + batch_size]
            position += batch_size
            devices = _devices_by_ids(chunk) if chunk else []
            if not devices and position < len(ids):
                continue  # the whole chunk was deleted meanwhile
        else:
            devices = list(base.filter(pk__gt=last_id).order_by("pk")[:batch_size])
        if not devices:
            return
        last_id = devices[-1][0]
        serial_of = {row[0]: row[2] for row in devices}
        keys: dict[int, dict[str, bytes]] = {}
        for device_id, name, version, wrapped in _keys_of(list(serial_of)):
            serial = serial_of[device_id]
            kek = keks.get(version)
            if kek is None:
                try:
                    kek = keks[version] = ring.get(version)
                except KekRingError:
                    _audit_unwrap_failure(device_id, name, version, "KEK version not in the ring")
                    raise KeyUnwrapError(
                        f"key {name} of serial {serial}: KEK v{version} is unknown"
                    ) from None
            try:
                plain = unwrap_key(kek, version, serial, name, wrapped)
            except KeyUnwrapError:
                _audit_unwrap_failure(device_id, name, version, "integrity check failed")
                raise
            found = keys.get(device_id)
            if found is None:
                keys[device_id] = {name: plain}
            else:
                found[name] = plain
        for row in devices:
            yield dict(zip(DEVICE_FIELDS, row[:width], strict=True)), _ordered(keys.get(row[0], {}))
        if ids is None and len(devices) < batch_size:
            return


def _ordered(keys: dict[str, bytes]) -> dict[str, bytes]:
    """DEK first, then GPK1…GPK4, then anything else by name: stable file output."""
    if len(keys) < 2:
        return keys
    rank = {name: index for index, name in enumerate(KEY_NAMES)}
    return dict(sorted(keys.items(), key=lambda item: (rank.get(item[0], 99), item[0])))
