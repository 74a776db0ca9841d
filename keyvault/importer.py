"""Factory key import (CSV or KEM), all or nothing, in constant memory.

Pass 1 streams the file once and checks every row (format, duplicates inside the file, serials
already stored), staging the good rows with their keys already wrapped in an unlinked temporary
file; pass 2 runs only when every row is good and streams the staged rows into the database in
one transaction (COPY on PostgreSQL, batched bulk_create elsewhere). A serial already stored
with the same keys is skipped, so importing the same file twice is harmless.
"""

from __future__ import annotations

import base64
import csv
import hmac
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from django.db import IntegrityError, connection, transaction

try:  # COPY goes straight to psycopg, whose errors Django does not translate
    from psycopg import IntegrityError as PsycopgIntegrityError
except ImportError:  # pragma: no cover
    PsycopgIntegrityError = IntegrityError
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from devices.models import Device
from keyvault import audit
from keyvault.audit import MAX_OBJECT_IDS
from keyvault.crypto import KeyUnwrapError, wrap_key
from keyvault.device_codes import hash_device_code
from keyvault.import_rows import (
    MAX_LISTED_PROBLEMS,
    ImportInputError,
    ImportReport,
    ImportRow,
    RowProblem,
    parsed_rows,
)
from keyvault.kek import get_kek_source
from keyvault.models import DeviceKey
from keyvault.services import stored_plain_keys

__all__ = [
    "MAX_LISTED_PROBLEMS",
    "ImportInputError",
    "ImportReport",
    "RowProblem",
    "import_keys",
    "resolve_owner",
    "validate_import",
]

CHECK_BATCH = 5_000
WRITE_BATCH = 10_000
ANALYZE_AFTER_ROWS = 50_000


class _SerialSet:
    """Every 8-digit serial as one bit: 12.5 MB for all 10^8, however many rows the file has."""

    def __init__(self) -> None:
        self._bits = bytearray(100_000_000 // 8 + 1)

    def add(self, serial: str) -> bool:
        """Add; False if it was already there."""
        number = int(serial)
        index, mask = number >> 3, 1 << (number & 7)
        if self._bits[index] & mask:
            return False
        self._bits[index] |= mask
        return True

    def __contains__(self, serial: str) -> bool:
        number = int(serial)
        return bool(self._bits[number >> 3] & (1 << (number & 7)))


def resolve_owner(text: str) -> Organization:
    """An organization by customer number or by exact (case-insensitive) name."""
    value = (text or "").strip()
    if not value:
        raise ImportInputError("give the owner organization (its name or customer number)")
    matches = list(
        Organization.objects.filter(Q(customer_number=value) | Q(name__iexact=value))[:3]
    )
    by_number = [org for org in matches if org.customer_number == value]
    if by_number:
        return by_number[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ImportInputError(f"no organization is named {value!r} or has that customer number")
    raise ImportInputError(f"several organizations are named {value!r}: use the customer number")


# --- pass 1: validate and stage -----------------------------------------------------------


def _same_keys(stored: dict[str, bytes], new: dict[str, bytes]) -> bool:
    """Every key the file gives matches the stored one (a KEM file carries only the DEK)."""
    return all(name in stored and hmac.compare_digest(stored[name], new[name]) for name in new)


def _existing_devices(batch: list[ImportRow]) -> dict[tuple[str, str], Device]:
    manufacturers = sorted({row.manufacturer for row in batch})
    serials = [row.serial for row in batch]
    if connection.vendor == "postgresql":  # one array parameter instead of thousands
        found = Device.objects.raw(
            "SELECT id, manufacturer, serial FROM devices_device "
            "WHERE manufacturer = ANY(%s) AND serial = ANY(%s)",
            [manufacturers, serials],
        )
    else:
        found = Device.objects.filter(serial__in=serials, manufacturer__in=manufacturers).only(
            "id", "serial", "manufacturer"
        )
    return {(device.manufacturer, device.serial): device for device in found}


def _new_rows(batch: list[ImportRow], report: ImportReport) -> list[ImportRow]:
    """The rows of a batch to store: stored serials are skipped (same keys) or reported."""
    if not batch:
        return []
    existing = _existing_devices(batch)
    if not existing:
        return batch
    try:
        stored = stored_plain_keys({device.pk: device.serial for device in existing.values()})
    except KeyUnwrapError:
        stored = None
    fresh = []
    for row in batch:
        device = existing.get((row.manufacturer, row.serial))
        if device is None:
            fresh.append(row)
        elif stored is None:
            report.add(row.line, f"serial {row.serial} is stored; its stored keys fail to unwrap")
        elif _same_keys(stored.get(device.pk, {}), row.keys):
            report.skipped += 1
        else:
            report.add(row.line, f"serial {row.serial} is already stored with different keys")
    return fresh


class _Stage:
    """Rows that passed every check, ready for the database: device code hashed, keys wrapped
    under the newest KEK (never plain), in an unlinked temporary file, so pass 2 reads neither
    the input again nor anything from memory."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.writer = csv.writer(handle)
        self.version, self.kek = get_kek_source().current()
        self.rows = 0

    def add(self, rows: list[ImportRow]) -> None:
        kek, version = self.kek, self.version
        lines = []
        for row in rows:
            line = [
                row.manufacturer,
                row.serial,
                hash_device_code(row.serial, row.device_code) if row.device_code else "",
                row.kind,
                row.device_type,
                row.type_no,
                row.config_no,
                row.consumption_type,
                "" if row.production_year is None else str(row.production_year),
                row.order_no,
            ]
            for name, key in row.keys.items():
                wrapped = wrap_key(kek, version, row.serial, name, key)
                line += [name, base64.b64encode(wrapped).decode("ascii")]
            lines.append(line)
        self.writer.writerows(lines)
        self.rows += len(lines)

    def __iter__(self) -> Iterator[list[str]]:
        self.handle.seek(0)
        return iter(csv.reader(self.handle))


def validate_import(
    handle: IO[bytes],
    fmt: str,
    report: ImportReport,
    *,
    password: str | None = None,
    progress: Callable[[int], None] | None = None,
    stage: _Stage | None = None,
) -> None:
    """Pass 1: every problem goes into the report; good new rows go to ``stage`` (until the
    first problem: after that nothing will be written, so staging would be wasted work)."""
    seen = _SerialSet()
    batch: list[ImportRow] = []

    def flush() -> None:
        fresh = _new_rows(batch, report)
        if stage is not None and report.ok:
            stage.add(fresh)
        if progress:
            progress(len(batch))
        batch.clear()

    for row in parsed_rows(handle, fmt, password, report):
        if not seen.add(row.serial):
            report.add(row.line, f"serial {row.serial} appears more than once in the file")
            continue
        batch.append(row)
        if len(batch) >= CHECK_BATCH:
            flush()
    if batch:
        flush()
    if report.rows == 0 and report.ok:
        report.add(0, "the file holds no rows")


# --- pass 2: write -------------------------------------------------------------------------

DEVICE_COLUMNS = (
    "manufacturer",
    "serial",
    "device_code_hash",
    "kind",
    "device_type",
    "type_no",
    "config_no",
    "consumption_type",
    "production_year",
    "order_no",
    "owner_id",
    "created_at",
)
_STAGED_DEVICE_FIELDS = 10


class _Writer:
    """Writes staged rows: COPY with ids from the sequence on PostgreSQL, else bulk_create."""

    def __init__(self, owner: Organization, kek_version: int) -> None:
        self.owner_id = owner.pk
        self.version = kek_version
        self.now = timezone.now()
        self.ids: list[int] = []
        self.devices = 0
        self.keys = 0

    def _device(self, line: list[str]) -> tuple[Any, ...]:
        values: list[Any] = line[:_STAGED_DEVICE_FIELDS]
        values[8] = int(values[8]) if values[8] else None
        return (*values, self.owner_id, self.now)

    @staticmethod
    def _keys(line: list[str]) -> Iterator[tuple[str, bytes]]:
        rest = line[_STAGED_DEVICE_FIELDS:]
        for index in range(0, len(rest), 2):
            yield rest[index], base64.b64decode(rest[index + 1])

    def write(self, batch: list[list[str]]) -> None:
        if not batch:
            return
        if connection.vendor == "postgresql":
            self._copy(batch)
        else:
            self._bulk_create(batch)
        self.devices += len(batch)

    def _remember(self, ids: list[int]) -> None:
        room = MAX_OBJECT_IDS - len(self.ids)
        if room > 0:
            self.ids.extend(ids[:room])

    def _copy(self, batch: list[list[str]]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('devices_device', 'id')) "
                "FROM generate_series(1, %s)",
                [len(batch)],
            )
            ids = [value for (value,) in cursor.fetchall()]
            device_sql = f"COPY devices_device (id, {', '.join(DEVICE_COLUMNS)}) FROM STDIN"
            with cursor.copy(device_sql) as copy:
                for device_id, line in zip(ids, batch, strict=True):
                    copy.write_row((device_id, *self._device(line)))
            key_sql = (
                "COPY keyvault_devicekey (device_id, name, wrapped, kek_version, updated_at) "
                "FROM STDIN"
            )
            with cursor.copy(key_sql) as copy:
                for device_id, line in zip(ids, batch, strict=True):
                    for name, wrapped in self._keys(line):
                        copy.write_row((device_id, name, wrapped, self.version, self.now))
                        self.keys += 1
        self._remember(ids)

    def _bulk_create(self, batch: list[list[str]]) -> None:
        devices = [
            Device(**dict(zip(DEVICE_COLUMNS, self._device(line), strict=True))) for line in batch
        ]
        Device.objects.bulk_create(devices, batch_size=1000)
        keys = [
            DeviceKey(device_id=device.pk, name=name, wrapped=wrapped, kek_version=self.version)
            for device, line in zip(devices, batch, strict=True)
            for name, wrapped in self._keys(line)
        ]
        DeviceKey.objects.bulk_create(keys, batch_size=1000)
        self.keys += len(keys)
        self._remember([device.pk for device in devices])


def import_keys(
    handle: IO[bytes],
    *,
    owner: Organization,
    fmt: str = "csv",
    password: str | None = None,
    actor: Any = None,
    actor_label: str | None = None,
    request: Any = None,
    filename: str = "",
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Import a factory key file for ``owner``; nothing is written unless every row is good.

    ``handle`` is a binary file, read once. ``progress(phase, rows)`` is called per batch with
    phase "check" (pass 1) or "write" (pass 2)."""
    if fmt not in {"csv", "kem"}:
        raise ImportInputError("the format is csv or kem")
    report = ImportReport(fmt=fmt, owner=owner.name)

    def tick(phase: str) -> Callable[[int], None] | None:
        return (lambda count: progress(phase, count)) if progress else None

    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as staged_file:
        stage = _Stage(staged_file)
        started = time.perf_counter()
        validate_import(handle, fmt, report, password=password, progress=tick("check"), stage=stage)
        report.seconds["check"] = round(time.perf_counter() - started, 2)
        if not report.ok:
            return report
        started = time.perf_counter()
        writer = _Writer(owner, stage.version)
        on_write = tick("write")
        try:
            with transaction.atomic():
                batch: list[list[str]] = []
                for line in stage:
                    batch.append(line)
                    if len(batch) >= WRITE_BATCH:
                        writer.write(batch)
                        if on_write:
                            on_write(len(batch))
                        batch = []
                writer.write(batch)
                if on_write and batch:
                    on_write(len(batch))
                audit.record(
                    "import",
                    actor=actor,
                    actor_label=actor_label,
                    request=request,
                    object_type="device",
                    object_ids=writer.ids,
                    count=writer.devices,
                    detail={
                        "format": fmt,
                        "owner_id": owner.pk,
                        "file": filename[:200],
                        "skipped": report.skipped,
                        "keys": writer.keys,
                    },
                )
        except (IntegrityError, PsycopgIntegrityError):
            report.add(
                0,
                "some serials were stored by someone else during the import; nothing was "
                "imported (run it again to see which)",
            )
            return report
    report.imported = writer.devices
    report.keys = writer.keys
    report.seconds["write"] = round(time.perf_counter() - started, 2)
    if connection.vendor == "postgresql" and writer.devices >= ANALYZE_AFTER_ROWS:
        # Fresh statistics, so the planner does not treat a million new rows as a few hundred
        # until autovacuum gets round to it.
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE devices_device, keyvault_devicekey")
        report.seconds["analyze"] = round(time.perf_counter() - started, 2)
    return report
