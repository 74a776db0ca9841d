"""Factory key import (CSV or KEM), all or nothing, in constant memory.

One pass over the file inside one transaction: each batch of rows is checked (format,
duplicates inside the file, serials already stored) and, while every row so far is good,
written at once with its keys wrapped (COPY on PostgreSQL, bulk_create elsewhere), so the
database maintains its indexes while the next batch is parsed. After the first bad row nothing
more is written but checking goes on, so the report lists every problem; then the transaction
is rolled back and nothing is imported. A serial already stored with the same keys is skipped,
so importing the same file twice is harmless.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import IO

from django.db import IntegrityError, connection, transaction

try:  # COPY goes straight to psycopg, whose errors Django does not translate
    from psycopg import IntegrityError as PsycopgIntegrityError
except ImportError:  # pragma: no cover
    # mypy allows no second definition of an imported class: this fallback is a different one.
    PsycopgIntegrityError = IntegrityError  # type: ignore[misc, assignment]
from django.db.models import Q

from accounts.models import Organization
from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from devices.models import Device
from keyfiles.import_rows import (
    MAX_LISTED_PROBLEMS,
    ImportInputError,
    ImportReport,
    ImportRow,
    RowProblem,
    parsed_rows,
)
from keyfiles.import_writer import CopyThread, ImportWriter
from keyvault.crypto import KeyUnwrapError
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

WRITE_BATCH = 10_000  # rows checked, then written, at a time
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


# --- checking -----------------------------------------------------------------------------


def _same_keys(stored: dict[str, bytes], new: dict[str, bytes]) -> bool:
    """Every key the file gives matches the stored one (a KEM file carries only the DEK)."""
    return all(name in stored and hmac.compare_digest(stored[name], new[name]) for name in new)


def _existing_devices(batch: list[ImportRow]) -> dict[tuple[str, str], Device]:
    manufacturers = sorted({row.manufacturer for row in batch})
    serials = [row.serial for row in batch]
    found: Iterable[Device]
    if connection.vendor == "postgresql":
        # The range of the batch's serials lets the unique (manufacturer, serial) btree
        # answer it (factory files come sorted by serial), and the lists go as array literals
        # (validated: three capitals, eight ASCII digits): binding 10,000 parameters costs
        # more than the lookup.
        found = Device.objects.raw(
            "SELECT id, manufacturer, serial, owner_id FROM devices_device "
            "WHERE manufacturer = ANY(%s::text[]) AND serial BETWEEN %s AND %s "
            "AND serial = ANY(%s::text[])",
            [
                "{" + ",".join(manufacturers) + "}",
                min(serials),
                max(serials),
                "{" + ",".join(serials) + "}",
            ],
        )
    else:
        found = Device.objects.filter(serial__in=serials, manufacturer__in=manufacturers).only(
            "id", "serial", "manufacturer", "owner_id"
        )
    return {(device.manufacturer, device.serial): device for device in found}


STORED_ELSEWHERE = (
    "is stored for another organization; an import does not move devices (transfer it in the "
    "admin if it changed hands)"
)


def _new_rows(
    batch: list[ImportRow], report: ImportReport, *, owner_id: int | None = None
) -> list[ImportRow]:
    """The rows of a batch to store: stored serials are skipped (same keys, same owner) or
    reported. A serial another organization holds is a problem, whatever its keys: skipping it
    would report as done for ``owner_id`` a device that stays someone else's (and
    ``owner_id=None``, a check without an owner, leaves ownership out)."""
    if not batch:
        return []
    existing = _existing_devices(batch)
    if not existing:
        return batch
    if owner_id is not None:
        elsewhere = {key for key, device in existing.items() if device.owner_id != owner_id}
        for row in batch:
            if (row.manufacturer, row.serial) in elsewhere:
                report.add(row.line, f"serial {row.serial} {STORED_ELSEWHERE}")
        batch = [row for row in batch if (row.manufacturer, row.serial) not in elsewhere]
        existing = {key: device for key, device in existing.items() if key not in elsewhere}
        if not existing:
            return batch
    try:
        stored = stored_plain_keys({device.pk: device.serial for device in existing.values()})
    except KeyUnwrapError:
        # Audited already, but inside the import's transaction, which this problem rolls
        # back: import_keys records it again afterwards.
        stored = None
        report.unwrap_failed_ids.extend(device.pk for device in existing.values())
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


def checked_batches(
    handle: IO[bytes],
    fmt: str,
    report: ImportReport,
    *,
    password: str | None = None,
    progress: Callable[[int], None] | None = None,
    check_stored: bool = True,
    owner_id: int | None = None,
) -> Iterator[list[ImportRow]]:
    """Every problem goes into the report; yields the good rows not yet stored, a batch at a
    time. Stored serials are looked up when the batch is complete, so a caller that writes
    each batch before asking for the next sees its own rows as stored (the file's duplicates
    are caught before that, by the serial set). ``check_stored=False`` leaves that lookup to
    the caller (the copy thread does it on PostgreSQL). With ``owner_id``, a serial another
    organization holds is a problem (see _new_rows)."""
    seen = _SerialSet()
    batch: list[ImportRow] = []
    for row in parsed_rows(handle, fmt, password, report):
        if not seen.add(row.serial):
            report.add(row.line, f"serial {row.serial} appears more than once in the file")
            continue
        batch.append(row)
        if len(batch) >= WRITE_BATCH:
            yield _new_rows(batch, report, owner_id=owner_id) if check_stored else batch
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        yield _new_rows(batch, report, owner_id=owner_id) if check_stored else batch
        if progress:
            progress(len(batch))
    if report.rows == 0 and report.ok:
        report.add(0, "the file holds no rows")


def validate_import(
    handle: IO[bytes],
    fmt: str,
    report: ImportReport,
    *,
    password: str | None = None,
    progress: Callable[[int], None] | None = None,
    owner: Organization | None = None,
) -> None:
    """Check a file without writing anything: every problem goes into the report (with
    ``owner``, also the serials another organization holds)."""
    owner_id = owner.pk if owner is not None else None
    batches = checked_batches(
        handle, fmt, report, password=password, progress=progress, owner_id=owner_id
    )
    for _batch in batches:
        pass


# --- importing ----------------------------------------------------------------------------


class _NothingImported(Exception):
    """Rolls the import's transaction back: the report holds the reasons."""


def import_keys(
    handle: IO[bytes],
    *,
    owner: Organization,
    fmt: str = "csv",
    password: str | None = None,
    context: AuditContext,
    filename: str = "",
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Import a factory key file for ``owner``; nothing is written unless every row is good.

    ``handle`` is a binary file, read once. ``progress("import", rows)`` is called per batch."""
    if fmt not in {"csv", "kem"}:
        raise ImportInputError("the format is csv or kem")
    report = ImportReport(fmt=fmt, owner=owner.name)
    on_batch = (lambda count: progress("import", count)) if progress else None
    started = time.perf_counter()
    writer = ImportWriter(owner)
    try:
        with transaction.atomic():
            _write_checked_rows(handle, fmt, password, report, writer, on_batch)
            if not report.ok:
                raise _NothingImported
            audit.record(
                Action.IMPORT,
                context=context,
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
    except _NothingImported:
        _record_unwrap_failures(report)
        return report
    except (IntegrityError, PsycopgIntegrityError):
        report.add(
            0,
            "some serials were stored by someone else during the import; nothing was "
            "imported (run it again to see which)",
        )
        return report
    report.imported = writer.devices
    report.keys = writer.keys
    report.seconds["import"] = round(time.perf_counter() - started, 2)
    _analyze_after_large_import(writer, report)
    return report


def _write_checked_rows(
    handle: IO[bytes],
    fmt: str,
    password: str | None,
    report: ImportReport,
    writer: ImportWriter,
    on_batch: Callable[[int], None] | None,
) -> None:
    """Check the file batch by batch and write the good batches: on PostgreSQL by COPY in a
    second thread while the next batch is checked, elsewhere with bulk_create. Once the report
    holds a problem nothing more is written (the caller rolls back)."""
    if connection.vendor == "postgresql":
        with CopyThread(writer, partial(_new_rows, owner_id=writer.owner_id), report) as copier:
            batches = checked_batches(
                handle, fmt, report, password=password, progress=on_batch, check_stored=False
            )
            for batch in batches:
                if report.ok and copier.report.ok:
                    copier.put(writer.prepare(batch))
        report.merge(copier.report)
        return
    batches = checked_batches(
        handle, fmt, report, password=password, progress=on_batch, owner_id=writer.owner_id
    )
    for batch in batches:
        if report.ok:
            writer.bulk_create(batch)


def _record_unwrap_failures(report: ImportReport) -> None:
    """Stored keys that failed their integrity check while the file was compared with them."""
    if report.unwrap_failed_ids:
        audit.record(
            Action.UNWRAP_FAILED,
            context=AuditContext.system(),
            object_type="device",
            object_ids=report.unwrap_failed_ids,
            count=len(report.unwrap_failed_ids),
            outcome="error",
            detail={"reason": "a stored key failed its integrity check during an import"},
        )


def _analyze_after_large_import(writer: ImportWriter, report: ImportReport) -> None:
    """Fresh statistics, so the planner does not treat a million new rows as a few hundred
    until autovacuum gets round to it."""
    if connection.vendor == "postgresql" and writer.devices >= ANALYZE_AFTER_ROWS:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE devices_device, keyvault_devicekey")
        report.seconds["analyze"] = round(time.perf_counter() - started, 2)
