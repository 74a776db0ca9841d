"""Where a streamed archive's bytes go: a sink the response generator drains as they pile up,
and a writer that compresses and encrypts an archive member on a second thread."""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from types import TracebackType
from typing import Any

FLUSH_BYTES = 1 << 16


class ChunkSink(io.RawIOBase):
    """A write-only file whose bytes a generator hands on as soon as they are written. Writes
    may come from a ``MemberWriter``'s thread while the generator drains: both take the lock."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._position = 0
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        with self._lock:
            self._parts.append(chunk)
            self._size += len(chunk)
            self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def ready(self) -> bool:
        return self._size >= FLUSH_BYTES

    def drain(self) -> bytes:
        with self._lock:
            data = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
        return data


class MemberWriter:
    """Writes blocks into an open archive member on its own thread, in order.

    Deflate, AES and the CRC release the GIL, so they run on the other core while the caller's
    thread unwraps and formats the next rows (a million-key ZIP spends about a sixth of its time
    there). At most ``depth`` blocks wait. The first error of the thread is raised at the next
    ``write`` or at ``close``; ``close`` (also on leaving the ``with`` block, however it is left)
    waits for every queued block, so the member can be closed after it."""

    def __init__(self, member: Any, depth: int = 2) -> None:
        self._member = member
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="archive-member", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._member.write(block)
                except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                    self._error = error

    def write(self, block: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(block)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> MemberWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        # Leaving on an error (or a closed generator): stop the thread, keep the error leaving.
        with contextlib.suppress(BaseException):
            self.close()
