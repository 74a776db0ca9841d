"""Where a streamed archive's bytes go: a sink the response generator drains as they pile up."""

from __future__ import annotations

import io
from typing import Any

FLUSH_BYTES = 1 << 16


class ChunkSink(io.RawIOBase):
    """A write-only file whose bytes a generator hands on as soon as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
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
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return data
