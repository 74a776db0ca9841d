"""Reading factory key files row by row: CSV (header row, named columns) or KEM (Meter
elements), with every problem reported by line (CSV) or meter position (KEM)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from devices.models import Device
from keyvault.kem import KemError, iter_kem_meters
from keyvault.meter_types import long_name

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


def parsed_rows(
    handle: IO[bytes], fmt: str, password: str | None, report: ImportReport
) -> Iterator[ImportRow]:
    if fmt == "csv":
        return _csv_parsed(handle, report)
    if fmt == "kem":
        return _kem_parsed(handle, password or "", report)
    raise ImportInputError("the format is csv or kem")
