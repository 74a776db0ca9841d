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
import io
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from keyvault.kek import get_kek_source
from keyvault.kem import KemError, iter_kem_meters
from keyvault.meter_types import long_name
from keyvault.models import DeviceKey
from keyvault.services import stored_plain_keys

MANUFACTURER = "KAM"
REQUIRED_COLUMNS = ("serial", "device_code", "type", "dek")
OPTIONAL_COLUMNS = (
    "order_no",
    "type_no",
    "config_no",
    "consumption_type",
    "production_year",
    "kind",
    "gpk1",
    "gpk2",
    "gpk3",
    "gpk4",
)
GPK_COLUMNS = ("gpk1", "gpk2", "gpk3", "gpk4")
MAX_LISTED_PROBLEMS = 10_000
CHECK_BATCH = 5_000
WRITE_BATCH = 10_000
ANALYZE_AFTER_ROWS = 50_000
TEXT_LIMITS = {"type": 80, "order_no": 40, "type_no": 40, "config_no": 40, "consumption_type": 40}
KINDS = frozenset(Device.Kind.values)
_SERIAL = re.compile(r"\d{8}")
_CODE = re.compile(r"\d{2}")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_COLUMN_NAME = re.compile(r"(?![0-9a-f]{8})[a-z][a-z0-9_ ]{0,29}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ImportInputError(Exception):
    """The import cannot start (unknown owner, unknown format); the message says why."""


@dataclass
class RowProblem:
    line: int
    reason: str
    unit: str = "line"  # "meter" for KEM input: the position of the Meter element

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.reason}" if self.line else self.reason


@dataclass
class ImportRow:
    line: int
    serial: str
    device_code: str
    device_type: str
    keys: dict[str, bytes]
    order_no: str = ""
    type_no: str = ""
    config_no: str = ""
    consumption_type: str = ""
    production_year: int | None = None
    kind: str = Device.Kind.METER
    manufacturer: str = MANUFACTURER


@dataclass
class ImportReport:
    fmt: str
    owner: str
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    keys: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # "check" and "write" phases

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, line: int, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            unit = "meter" if self.fmt == "kem" else "line"
            self.problems.append(RowProblem(line, reason, unit))

    def summary(self) -> str:
        if not self.ok:
            listed = len(self.problems)
            more = "" if listed == self.problem_count else f" (first {listed} listed)"
            return (
                f"Nothing was imported: {self.problem_count} problem(s) in {self.rows} row(s)"
                f"{more}."
            )
        return (
            f"Imported {self.imported} device(s) with {self.keys} key(s) for {self.owner}; "
            f"skipped {self.skipped} already stored with the same keys."
        )


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


# --- parsing -------------------------------------------------------------------------------------


def _text(
    raw: dict[str, str], name: str, problems: list[str], label: str, *, check: bool = True
) -> str:
    value = (raw.get(name) or "").strip()
    if check and _CONTROL.search(value):
        problems.append(f"{label} contains control characters")
    limit = TEXT_LIMITS.get(name)
    if limit and len(value) > limit:
        problems.append(f"{label} is longer than {limit} characters")
    return value


def _key(value: str, label: str, problems: list[str]) -> bytes | None:
    value = value.strip()
    if not _HEX32.fullmatch(value):
        problems.append(f"{label} must be 32 hexadecimal digits")
        return None
    return bytes.fromhex(value)


def parse_csv_row(line: int, raw: dict[str, str]) -> tuple[ImportRow | None, list[str]]:
    problems: list[str] = []
    check = _CONTROL.search("".join(raw.values())) is not None  # rare: then name the field
    serial = (raw.get("serial") or "").strip()
    if not _SERIAL.fullmatch(serial):
        problems.append("serial must be exactly 8 digits")
    code = (raw.get("device_code") or "").strip()
    if not _CODE.fullmatch(code):
        problems.append("device_code must be exactly 2 digits")
    device_type = _text(raw, "type", problems, "type", check=check)
    if not device_type:
        problems.append("type is empty")
    keys: dict[str, bytes] = {}
    dek = _key(raw.get("dek") or "", "dek", problems)
    if dek is not None:
        keys["DEK"] = dek
    for column in GPK_COLUMNS:
        value = (raw.get(column) or "").strip()
        if value:
            gpk = _key(value, column, problems)
            if gpk is not None:
                keys[column.upper()] = gpk
    year_text = (raw.get("production_year") or "").strip()
    year = None
    if year_text:
        if year_text.isdigit() and 1980 <= int(year_text) <= 2100:
            year = int(year_text)
        else:
            problems.append("production_year must be a year such as 2024")
    kind = (raw.get("kind") or "").strip().lower() or Device.Kind.METER
    if kind not in KINDS:
        problems.append("kind must be meter or concentrator")
    texts = {
        name: _text(raw, name, problems, name, check=check)
        for name in TEXT_LIMITS
        if name != "type"
    }
    if problems:
        return None, problems
    return (
        ImportRow(
            line=line,
            serial=serial,
            device_code=code,
            device_type=device_type,
            keys=keys,
            production_year=year,
            kind=kind,
            **texts,
        ),
        [],
    )


def _csv_rows(handle: IO[bytes], report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield from _csv_records(csv.reader(text), report)
    finally:
        text.detach()  # leave the caller's file open


def _csv_records(reader: Any, report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error):
        report.add(1, "the file is not CSV text in UTF-8")
        return
    if header is None:
        report.add(0, "the file is empty: expected a header row and at least one row")
        return
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    duplicated = sorted(
        {name for name in columns if columns.count(name) > 1 and _COLUMN_NAME.fullmatch(name)}
    )
    problems = []
    if missing:
        problems.append("missing column(s): " + ", ".join(missing))
    if columns and _SERIAL.fullmatch(columns[0]):
        problems.append("the first row looks like data: the file needs a header row")
    elif unknown:
        # Only names that look like column names are echoed: never cell values (keys).
        named = [name for name in unknown if _COLUMN_NAME.fullmatch(name)]
        shown = ", ".join(repr(name) for name in named[:10])
        others = len(unknown) - len(named)
        problems.append(
            "unknown column(s): "
            + ", ".join(part for part in (shown, f"{others} unreadable" if others else "") if part)
        )
    if duplicated:
        problems.append("repeated column(s): " + ", ".join(duplicated))
    if problems:
        expected = ", ".join(REQUIRED_COLUMNS) + " (optional: " + ", ".join(OPTIONAL_COLUMNS) + ")"
        report.add(1, "wrong header: " + "; ".join(problems) + f". Expected columns: {expected}")
        return
    width = len(columns)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            report.add(reader.line_num + 1, "the file is not UTF-8 text from here on")
            return
        except csv.Error as exc:
            report.add(reader.line_num, f"unreadable CSV ({str(exc)[:80]})")
            return
        if not values or not "".join(values).strip():
            continue
        if len(values) != width:
            report.add(reader.line_num, f"expected {width} fields, found {len(values)}")
            continue
        yield reader.line_num, dict(zip(columns, values, strict=True))


def _csv_parsed(handle: IO[bytes], report: ImportReport) -> Iterator[ImportRow]:
    for line, raw in _csv_rows(handle, report):
        report.rows += 1
        row, problems = parse_csv_row(line, raw)
        if row is None:
            report.add(line, "; ".join(problems))
        else:
            yield row


def parse_kem_meter(index: int, values: dict[str, str]) -> tuple[ImportRow | None, list[str]]:
    problems: list[str] = []
    serial = values.get("SerialNo", "").strip()
    if not _SERIAL.fullmatch(serial):
        problems.append("SerialNo must be exactly 8 digits")
    name = values.get("MeterName", "").strip()
    if not name:
        problems.append("MeterName is empty")
    keys = {}
    dek = _key(values.get("DEK", ""), "DEK", problems)
    if dek is not None:
        keys["DEK"] = dek
    raw = {
        "type": long_name(name),
        "type_no": values.get("TypeNo", ""),
        "config_no": values.get("ConfigNo", ""),
        "consumption_type": values.get("ConsumptionType", ""),
    }
    texts = {key: _text(raw, key, problems, key) for key in raw}
    vendor = values.get("VendorId", "").strip().upper()
    if problems:
        return None, problems
    return (
        ImportRow(
            line=index,
            serial=serial,
            device_code="",
            device_type=texts.pop("type"),
            keys=keys,
            manufacturer=vendor if re.fullmatch(r"[A-Z]{3}", vendor) else MANUFACTURER,
            **texts,
        ),
        [],
    )


def _kem_parsed(handle: IO[bytes], password: str, report: ImportReport) -> Iterator[ImportRow]:
    handle.seek(0)
    try:
        for meter in iter_kem_meters(handle, password):
            report.rows += 1
            row, problems = parse_kem_meter(meter.index, meter.values)
            if row is None:
                report.add(meter.index, "; ".join(problems))
            else:
                yield row
    except KemError as exc:
        report.add(0, f"the KEM file cannot be read: {exc}")
    if report.rows == 0 and report.ok:
        report.add(0, "the KEM file holds no meters")


def _parsed(
    handle: IO[bytes], fmt: str, password: str | None, report: ImportReport
) -> Iterator[ImportRow]:
    if fmt == "csv":
        return _csv_parsed(handle, report)
    if fmt == "kem":
        return _kem_parsed(handle, password or "", report)
    raise ImportInputError("the format is csv or kem")


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

    for row in _parsed(handle, fmt, password, report):
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
