"""KEK rotation: rewrap every stored key that is not under the newest KEK.

Each batch is read, rewrapped in memory and written back in its own transaction (on PostgreSQL
by a second thread, so the next batch is rewrapped while the last one is written), so a crash
loses at most one batch of work and a rerun picks up what is left (keys already under the newest
KEK are never touched again). A row changed by someone else meanwhile is left alone: the update
only applies where the row still has the KEK version it was read with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from keyvault.crypto import KeyUnwrapError, unwrap_key, wrap_key
from keyvault.kek import KekRingError, KekSource, get_kek_source
from keyvault.models import DeviceKey

DEFAULT_BATCH_SIZE = 10_000


@dataclass
class RotationResult:
    kek_version: int
    rewrapped: int = 0
    failed: int = 0
    already_current: int = 0
    failed_ids: list[int] = field(default_factory=list)


def keys_to_rotate(kek_version: int) -> int:
    return DeviceKey.objects.exclude(kek_version=kek_version).count()


def _write_batch(updates: list[tuple[int, int, bytes]], new_version: int) -> int:
    """Store rewrapped values; (id, old version, wrapped). Returns rows changed."""
    if not updates:
        return 0
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE keyvault_devicekey AS k SET wrapped = v.w, kek_version = %s, "
                "updated_at = %s FROM unnest(%s::bigint[], %s::integer[], %s::bytea[]) "
                "AS v(id, old, w) WHERE k.id = v.id AND k.kek_version = v.old",
                [
                    new_version,
                    now,
                    [row[0] for row in updates],
                    [row[1] for row in updates],
                    [row[2] for row in updates],
                ],
            )
            return cursor.rowcount
        cursor.executemany(
            "UPDATE keyvault_devicekey SET wrapped = %s, kek_version = %s, updated_at = %s "
            "WHERE id = %s AND kek_version = %s",
            [(wrapped, new_version, now, key_id, old) for key_id, old, wrapped in updates],
        )
        return len(updates)


class _BackgroundWriter:
    """On PostgreSQL the UPDATE of batch N runs in a second thread (its own connection and
    transaction) while this thread reads and rewraps batch N+1: the database and the crypto use
    both cores. At most one batch is in flight; its error surfaces on the next call."""

    def __init__(self, new_version: int) -> None:
        self.new_version = new_version
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rotate-kek-writer")
        self.pending: Future[int] | None = None
        self.written = 0

    def _run(self, updates: list[tuple[int, int, bytes]]) -> int:
        try:
            with transaction.atomic():
                return _write_batch(updates, self.new_version)
        finally:
            connection.close()  # this thread's own connection

    def submit(self, updates: list[tuple[int, int, bytes]]) -> None:
        self.wait()
        self.pending = self.pool.submit(self._run, updates)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.written += pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)


def rotate_keys(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    source: KekSource | None = None,
    context: AuditContext | None = None,
) -> RotationResult:
    """Rewrap every key not under the newest KEK; safe to interrupt and to run again.
    ``context``: who rotates (default: a management command, audited as "cli")."""
    context = context or AuditContext.command()
    ring = source or get_kek_source()
    new_version, new_kek = ring.current()
    result = RotationResult(kek_version=new_version)
    result.already_current = DeviceKey.objects.filter(kek_version=new_version).count()
    rewrapper = _Rewrapper(ring, new_version, new_kek)
    # Threads need their own connection: not inside a caller's transaction (tests), not SQLite.
    background = connection.vendor == "postgresql" and not connection.in_atomic_block
    writer = _BackgroundWriter(new_version) if background else None
    try:
        for rows in _batches_to_rotate(new_version, batch_size):
            updates, failures = rewrapper.rewrap(rows)
            if writer is not None:
                writer.submit(updates)
            else:
                with transaction.atomic():
                    result.rewrapped += _write_batch(updates, new_version)
            _record_failures(failures, result, context)
            if progress is not None:
                progress(len(rows))
    finally:
        if writer is not None:
            writer.close()
            result.rewrapped += writer.written
    audit.record(
        Action.ROTATE,
        context=context,
        object_type="device_key",
        count=result.rewrapped,
        outcome="ok" if not result.failed else "partial",
        detail={"kek_version": new_version, "failed": result.failed},
    )
    return result


_Row = tuple[int, int, str, str, int, bytes]  # key id, device id, serial, name, version, wrapped
_Failure = tuple[int, int, str, int, str]  # key id, device id, name, version, reason


def _batches_to_rotate(new_version: int, batch_size: int) -> Iterator[list[_Row]]:
    """The keys not yet under ``new_version``, in id order, a batch at a time (keyset paging:
    each batch starts after the last id of the one before)."""
    last_id = 0
    while True:
        rows = list(
            DeviceKey.objects.filter(id__gt=last_id)
            .exclude(kek_version=new_version)
            .order_by("id")
            .values_list("id", "device_id", "device__serial", "name", "kek_version", "wrapped")[
                :batch_size
            ]
        )
        if not rows:
            return
        last_id = rows[-1][0]
        yield rows
        if len(rows) < batch_size:
            return


class _Rewrapper:
    """Unwraps under the key's own KEK version and wraps under the newest; old KEKs are looked
    up once."""

    def __init__(self, ring: KekSource, new_version: int, new_kek: bytes) -> None:
        self.ring = ring
        self.new_version = new_version
        self.new_kek = new_kek
        self.old_keks: dict[int, bytes] = {}

    def rewrap(self, rows: list[_Row]) -> tuple[list[tuple[int, int, bytes]], list[_Failure]]:
        """(key id, old version, rewrapped bytes) per key, and the keys that failed, with why."""
        updates: list[tuple[int, int, bytes]] = []
        failures: list[_Failure] = []
        for key_id, device_id, serial, name, version, wrapped in rows:
            try:
                kek = self.old_keks.get(version)
                if kek is None:
                    kek = self.old_keks[version] = self.ring.get(version)
                plain = unwrap_key(kek, version, serial, name, wrapped)
            except KekRingError:
                failures.append((key_id, device_id, name, version, "KEK version not in ring"))
                continue
            except KeyUnwrapError:
                failures.append((key_id, device_id, name, version, "integrity check failed"))
                continue
            rewrapped = wrap_key(self.new_kek, self.new_version, serial, name, plain)
            updates.append((key_id, version, rewrapped))
        return updates, failures


def _record_failures(
    failures: list[_Failure], result: RotationResult, context: AuditContext
) -> None:
    """Count and audit each key that could not be rewrapped (it stays as it was)."""
    for key_id, device_id, name, version, reason in failures:
        result.failed += 1
        result.failed_ids.append(key_id)
        audit.record(
            Action.UNWRAP_FAILED,
            context=context,
            object_type="device",
            object_ids=[device_id],
            count=1,
            outcome="error",
            detail={"key_name": name, "kek_version": version, "reason": reason},
        )
