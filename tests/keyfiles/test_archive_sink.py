"""The archive member writer's second thread: blocks in order, errors not swallowed, no thread
left behind when a download is abandoned."""

from __future__ import annotations

import threading

import pytest

from keyfiles.archive_sink import MemberWriter


class _Member:
    def __init__(self, fail_at: int | None = None) -> None:
        self.blocks: list[bytes] = []
        self.fail_at = fail_at

    def write(self, block: bytes) -> int:
        if self.fail_at is not None and len(self.blocks) == self.fail_at:
            raise OSError("disk full")
        self.blocks.append(block)
        return len(block)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "archive-member"]


def test_every_block_reaches_the_member_in_order() -> None:
    member = _Member()
    with MemberWriter(member) as writer:
        for n in range(500):
            writer.write(b"%d," % n)
    assert b"".join(member.blocks) == b"".join(b"%d," % n for n in range(500))
    assert not _writer_threads()


def test_a_failing_member_write_stops_the_file_with_its_error() -> None:
    member = _Member(fail_at=3)
    with pytest.raises(OSError, match="disk full"), MemberWriter(member) as writer:
        for n in range(100):
            writer.write(b"%d," % n)
    assert len(member.blocks) == 3
    assert not _writer_threads()


def test_an_abandoned_stream_leaves_no_writer_thread() -> None:
    def chunks():  # noqa: ANN202
        with MemberWriter(_Member()) as writer:
            for n in range(1000):
                writer.write(b"x" * n)
                yield b"chunk"

    stream = chunks()
    next(stream)
    next(stream)
    stream.close()  # the browser went away mid-download
    assert not _writer_threads()
