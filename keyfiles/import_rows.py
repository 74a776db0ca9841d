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
from keyfiles.kem import KemError, iter_kem_meters
from keyfiles.meter_types import long_name

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
_SERIAL = re.compile(r"[0-9]{8}")  # ASCII digits only: \d would take any script's
_CODE = re.compile(r"[0-9]{2}")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_COLUMN_NAME = re.compile(r"(?![0-9a-f]{8})[a-z][a-z0-9_ ]{0,29}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Free text starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
# TAB and CR, the other two starts OWASP names, are stripped from the ends of every value, and
# refused as control characters inside it.
FORMULA_START = ("=", "+", "-", "@")


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
    seconds: dict[str, float] = field(default_factory=dict)  # "import" and "analyze" phases
    unwrap_failed_ids: list[int] = field(default_factory=list)  # stored devices, for the audit

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, line: int, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            unit = "meter" if self.fmt == "kem" else "line"
            self.problems.append(RowProblem(line, reason, unit))

    def merge(self, other: ImportReport) -> None:
        """Take in the problems another thread found (the stored serial check), by line."""
        if other.problem_count == 0 and not other.skipped and not other.unwrap_failed_ids:
            return
        self.problems = sorted(self.problems + other.problems, key=lambda problem: problem.line)
        del self.problems[MAX_LISTED_PROBLEMS:]
        self.problem_count += other.problem_count
        self.skipped += other.skipped
        self.unwrap_failed_ids.extend(other.unwrap_failed_ids)

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


def _key(value: str, label: str, problems: list[str]) -> bytes | None:
    value = value.strip()
    if not _HEX32.fullmatch(value):
        problems.append(f"{label} must be 32 hexadecimal digits")
        return None
    return bytes.fromhex(value)


class CsvLayout:
    """Where each known column sits in this file's rows: a row is parsed from its list of
    values, without a dict per row (a factory file has a million rows)."""

    def __init__(self, columns: list[str]) -> None:
        self.width = len(columns)
        position = {name: index for index, name in enumerate(columns)}
        self.serial = position["serial"]
        self.code = position["device_code"]
        self.type = position["type"]
        self.dek = position["dek"]
        self.gpks = [(name, position[name]) for name in GPK_COLUMNS if name in position]
        self.year = position.get("production_year")
        self.kind = position.get("kind")
        self.texts = [
            (name, position[name]) for name in TEXT_LIMITS if name != "type" and name in position
        ]

    def parse(self, line: int, values: list[str]) -> tuple[ImportRow | None, list[str]]:
        problems: list[str] = []
        check = _CONTROL.search("".join(values)) is not None  # rare: then name the field
        serial = values[self.serial].strip()
        if not (len(serial) == 8 and _SERIAL.fullmatch(serial)):
            problems.append("serial must be exactly 8 digits")
        code = values[self.code].strip()
        if not (len(code) == 2 and _CODE.fullmatch(code)):
            problems.append("device_code must be exactly 2 digits")
        device_type = _checked_text(values[self.type], "type", problems, check)
        if not device_type:
            problems.append("type is empty")
        keys: dict[str, bytes] = {}
        dek = _key(values[self.dek], "dek", problems)
        if dek is not None:
            keys["DEK"] = dek
        for column, index in self.gpks:
            value = values[index].strip()
            if value:
                gpk = _key(value, column, problems)
                if gpk is not None:
                    keys[column.upper()] = gpk
        year = None
        if self.year is not None:
            year_text = values[self.year].strip()
            if year_text:
                if year_text.isdigit() and 1980 <= int(year_text) <= 2100:
                    year = int(year_text)
                else:
                    problems.append("production_year must be a year such as 2024")
        kind: str = Device.Kind.METER
        if self.kind is not None:
            kind = values[self.kind].strip().lower() or Device.Kind.METER
            if kind not in KINDS:
                problems.append("kind must be meter or concentrator")
        texts = {
            name: _checked_text(values[index], name, problems, check) for name, index in self.texts
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


def _checked_text(raw: str, name: str, problems: list[str], check: bool = True) -> str:
    """A free-text value (type, order number, ...), stripped; ``check=False`` skips the control
    character search when the caller knows the whole row has none (the common case)."""
    value = raw.strip()  # what is stored: a TAB or CR at either end never is
    if check and _CONTROL.search(value):
        problems.append(f"{name} contains control characters")
    if value.startswith(FORMULA_START):
        problems.append(
            f"{name} starts with “{value[0]}”, which spreadsheet programs run as a formula "
            "(values may not start with = + - or @)"
        )
    limit = TEXT_LIMITS[name]
    if len(value) > limit:
        problems.append(f"{name} is longer than {limit} characters")
    return value


def _other_separator(columns: list[str]) -> str:
    """How a header row read as one column separates its names, when it does so by ; or TAB
    and holds the required names (a spreadsheet's "CSV" in a country whose decimal mark is the
    comma); "" otherwise. Only the separator is named, never a cell."""
    if len(columns) != 1:
        return ""
    for character, name in ((";", "“;”"), ("\t", "tabs")):
        names = {part.strip() for part in columns[0].split(character)}
        if set(REQUIRED_COLUMNS) <= names:
            return name
    return ""


def _csv_rows(
    handle: IO[bytes], report: ImportReport
) -> Iterator[tuple[CsvLayout, int, list[str]]]:
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield from _csv_records(csv.reader(text), report)
    finally:
        text.detach()  # leave the caller's file open


def _csv_records(reader: Any, report: ImportReport) -> Iterator[tuple[CsvLayout, int, list[str]]]:
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error):
        report.add(1, "the file is not CSV text in UTF-8")
        return
    if header is None:
        report.add(0, "the file is empty: expected a header row and at least one row")
        return
    columns = [name.strip().lower() for name in header]
    separator = _other_separator(columns)
    if separator:
        report.add(
            1,
            f"wrong header: the columns are separated by {separator}, not commas. Save the file "
            "as comma-separated CSV (in Excel: “CSV UTF-8 (Comma delimited)”) and import it "
            "again.",
        )
        return
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
        nameless = unknown.count("")
        others = len(unknown) - len(named) - nameless
        parts = (
            shown,
            f"{nameless} without a name (a comma at the end of the header row?)"
            if nameless
            else "",
            f"{others} unreadable" if others else "",
        )
        problems.append("unknown column(s): " + ", ".join(part for part in parts if part))
    if duplicated:
        problems.append("repeated column(s): " + ", ".join(duplicated))
    if problems:
        expected = ", ".join(REQUIRED_COLUMNS) + " (optional: " + ", ".join(OPTIONAL_COLUMNS) + ")"
        report.add(1, "wrong header: " + "; ".join(problems) + f". Expected columns: {expected}")
        return
    layout = CsvLayout(columns)
    width = layout.width
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
        yield layout, reader.line_num, values


def _csv_parsed(handle: IO[bytes], report: ImportReport) -> Iterator[ImportRow]:
    for layout, line, values in _csv_rows(handle, report):
        report.rows += 1
        row, problems = layout.parse(line, values)
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
    texts = {key: _checked_text(value, key, problems) for key, value in raw.items()}
    vendor = values.get("VendorId", "").strip().upper()
    if problems:
        return None, problems
    return (
        ImportRow(
            line=index,
            serial=serial,
            device_code="",
            device_type=texts["type"],
            keys=keys,
            manufacturer=vendor if re.fullmatch(r"[A-Z]{3}", vendor) else MANUFACTURER,
            type_no=texts["type_no"],
            config_no=texts["config_no"],
            consumption_type=texts["consumption_type"],
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
