"""Writing checked import rows: device codes hashed, keys wrapped under the newest KEK (never
plain in the database).

On PostgreSQL the rows go by COPY from a second thread on the import's own connection and
transaction: PostgreSQL spends about as long maintaining the device indexes as this process
spends parsing, hashing and wrapping, so the two overlap (a million rows: the sum would be
twice the time). The parsing thread hands over finished COPY text and does not touch the
database until the copier has finished. Elsewhere (SQLite) rows are written with bulk_create,
batch by batch, in the calling thread.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from django.db import connections
from django.utils import timezone

from accounts.models import Organization
from audit.services import MAX_OBJECT_IDS
from devices.device_codes import device_code_hasher
from devices.models import Device
from keyfiles.import_rows import ImportReport, ImportRow
from keyvault.crypto import key_wrapper
from keyvault.kek import get_kek_source
from keyvault.models import DeviceKey

# The columns the import writes, from Device._meta (the one column list): the code hash, the
# owner and the creation time, filled by the import itself, and every column ImportRow has an
# attribute of the same name for. Any other column is left to its database default.
_IMPORT_FILLS = ("device_code_hash", "owner_id", "created_at")
DEVICE_COLUMNS = tuple(
    column
    for column in Device.columns(exclude=("id",))
    if column in _IMPORT_FILLS or column in {field.name for field in fields(ImportRow)}
)
_ROW_COLUMNS = tuple(column for column in DEVICE_COLUMNS if column not in _IMPORT_FILLS)
_row_values = attrgetter(*_ROW_COLUMNS)
# (the row's values + the import's own values) → DEVICE_COLUMNS order
_in_column_order = itemgetter(
    *[(_ROW_COLUMNS + _IMPORT_FILLS).index(column) for column in DEVICE_COLUMNS]
)
_DEVICE_COPY = f"COPY {Device._meta.db_table} (id, {', '.join(DEVICE_COLUMNS)}) FROM STDIN"  # noqa: S608
_KEY_COPY = (
    f"COPY {DeviceKey._meta.db_table} "  # noqa: S608
    "(device_id, name, wrapped, kek_version, updated_at) FROM STDIN"
)
_COPY_NULL = "\\N"
COPY_SWITCH_INTERVAL = 0.0005  # seconds, while the copy thread runs


@lru_cache(maxsize=4096)
def _copy_text(value: str) -> str:
    """A text value in COPY's text format. Imported texts hold no control characters (the
    parser refuses them), so only the backslash needs escaping. Types and order numbers
    repeat: cached."""
    return value.replace("\\", "\\\\")


def _copy_value(value: Any, now: str) -> str:
    """A device value in COPY's text format: text (escaped), NULL, the import's time (``now``,
    already text) or a number."""
    if value.__class__ is str:
        return _copy_text(value) if "\\" in value else value
    if value is None:
        return _COPY_NULL
    if isinstance(value, datetime):
        return now
    return str(value)


@dataclass
class PreparedBatch:
    """A batch of checked rows with their COPY lines, all but the device id (the copier takes
    ids from the sequence for the rows it really writes)."""

    rows: list[ImportRow]
    device_lines: list[str]  # "manufacturer\t…\n" per row
    key_lines: list[list[str]]  # per row: "name\t\\x…\t…\n" per key


class ImportWriter:
    def __init__(self, owner: Organization) -> None:
        self.owner_id = owner.pk
        self.version, kek = get_kek_source().current()
        self.wrap = key_wrapper(kek, self.version)
        self.hash_code = device_code_hasher()
        self.now = timezone.now()
        self.ids: list[int] = []
        self.devices = 0
        self.keys = 0

    # --- the values of one row ---------------------------------------------------------------

    def _device(self, row: ImportRow) -> tuple[Any, ...]:
        """The row's values for DEVICE_COLUMNS, in that order."""
        code_hash = self.hash_code(row.serial, row.device_code) if row.device_code else ""
        return _in_column_order(_row_values(row) + (code_hash, self.owner_id, self.now))

    def _keys(self, row: ImportRow) -> list[tuple[str, bytes]]:
        return [(name, self.wrap(row.serial, name, key)) for name, key in row.keys.items()]

    def prepare(self, rows: list[ImportRow]) -> PreparedBatch:
        """COPY text for these rows, built in the parsing thread."""
        now = self.now.isoformat()
        key_tail = f"\t{self.version}\t{now}\n"
        device_lines = []
        key_lines = []
        for row in rows:
            values = self._device(row)
            device_lines.append("\t".join([_copy_value(value, now) for value in values]) + "\n")
            key_lines.append(
                [f"{name}\t\\\\x{wrapped.hex()}{key_tail}" for name, wrapped in self._keys(row)]
            )
        return PreparedBatch(rows, device_lines, key_lines)

    def _remember(self, ids: list[int]) -> None:
        room = MAX_OBJECT_IDS - len(self.ids)
        if room > 0:
            self.ids.extend(ids[:room])

    # --- PostgreSQL ---------------------------------------------------------------------------

    def copy(self, cursor: Any, batch: PreparedBatch, fresh: list[ImportRow]) -> None:
        """COPY the ``fresh`` rows of a prepared batch (the others are stored already)."""
        if not fresh:
            return
        if len(fresh) == len(batch.rows):
            positions: range | list[int] = range(len(batch.rows))
        else:
            wanted = {id(row) for row in fresh}
            positions = [i for i, row in enumerate(batch.rows) if id(row) in wanted]
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('devices_device', 'id')) "
            "FROM generate_series(1, %s)",
            [len(positions)],
        )
        ids = [value for (value,) in cursor.fetchall()]
        lines = batch.device_lines
        key_lines = batch.key_lines
        devices = "".join(
            [f"{device_id}\t{lines[p]}" for device_id, p in zip(ids, positions, strict=True)]
        )
        keys = [
            f"{device_id}\t{line}"
            for device_id, p in zip(ids, positions, strict=True)
            for line in key_lines[p]
        ]
        # One write per COPY: libpq sends it piece by piece as PostgreSQL takes it, without
        # the GIL, so the parsing thread runs meanwhile (smaller writes each wait for the GIL).
        with cursor.copy(_DEVICE_COPY) as copy:
            copy.write(devices.encode("utf-8"))
        with cursor.copy(_KEY_COPY) as copy:
            copy.write("".join(keys).encode("ascii"))
        self.devices += len(ids)
        self.keys += len(keys)
        self._remember(ids)

    # --- elsewhere ----------------------------------------------------------------------------

    def bulk_create(self, rows: list[ImportRow]) -> None:
        if not rows:
            return
        devices = [
            Device(**dict(zip(DEVICE_COLUMNS, self._device(row), strict=True))) for row in rows
        ]
        Device.objects.bulk_create(devices, batch_size=1000)
        keys = [
            DeviceKey(device_id=device.pk, name=name, wrapped=wrapped, kek_version=self.version)
            for device, row in zip(devices, rows, strict=True)
            for name, wrapped in self._keys(row)
        ]
        DeviceKey.objects.bulk_create(keys, batch_size=1000)
        self.devices += len(devices)
        self.keys += len(keys)
        self._remember([device.pk for device in devices])


class CopyThread(threading.Thread):
    """Checks each prepared batch against the stored serials and COPYs its new rows, on the
    connection (and so in the transaction) of the thread that started it, as Django's live
    server thread shares a test connection. ``check(rows, report)`` is the importer's stored
    serial check; its problems go into a report of this thread's own, merged at the end."""

    def __init__(
        self,
        writer: ImportWriter,
        check: Callable[[list[ImportRow], ImportReport], list[ImportRow]],
        report: ImportReport,
        alias: str = "default",
    ) -> None:
        super().__init__(name="kamkeys-import-copy", daemon=True)
        self.writer = writer
        self.check = check
        self.main_report = report
        self.report = ImportReport(fmt=report.fmt, owner=report.owner)
        self.alias = alias
        self.connection = connections[alias]
        self.batches: queue.Queue[PreparedBatch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        connections[self.alias] = self.connection
        while (batch := self.batches.get()) is not None:
            if self.error is not None:
                continue  # drain: the parsing thread stops at its next put
            try:
                fresh = self.check(batch.rows, self.report)
                if self.report.ok and self.main_report.ok:
                    with self.connection.cursor() as cursor:
                        self.writer.copy(cursor, batch, fresh)
            except BaseException as exc:  # handed to the parsing thread, which re-raises it
                self.error = exc

    def put(self, batch: PreparedBatch) -> None:
        if self.error is not None:
            raise self.error
        self.batches.put(batch)

    def __enter__(self) -> CopyThread:
        self.connection.ensure_connection()
        self.connection.inc_thread_sharing()
        # The copier needs the GIL back after each piece libpq sends; with the default 5 ms
        # switch interval it waits for the parsing thread that long each time (a million-row
        # import: 18% slower). Restored on exit.
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self.switch_interval, COPY_SWITCH_INTERVAL))
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.batches.put(None)
        self.join()
        sys.setswitchinterval(self.switch_interval)
        self.connection.dec_thread_sharing()
        if self.error is not None and exc_info[0] is None:
            raise self.error
