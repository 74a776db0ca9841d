"""keyvault.crypto.SealedFile: what is written reads back the same from any offset, and the
bytes on disk are not the plain text."""

from __future__ import annotations

import io
import os
import random

from keyvault.crypto import SealedFile


def test_a_sealed_file_reads_back_what_was_written_from_any_offset():
    plain = os.urandom(100_003)
    sealed = SealedFile()
    for start in range(0, len(plain), 7_777):
        sealed.write(plain[start : start + 7_777])
    assert sealed.tell() == len(plain)
    assert sealed.seek(0) == 0
    assert sealed.readall() == plain
    for _ in range(200):
        start = random.randrange(len(plain))
        size = random.randrange(1, 5_000)
        sealed.seek(start)
        assert sealed.read(size) == plain[start : start + size]
    assert sealed.seek(-10, io.SEEK_END) == len(plain) - 10
    assert sealed.read() == plain[-10:]
    assert sealed.read(5) == b""
    sealed.close()
    assert sealed.closed


def test_the_bytes_of_a_sealed_file_are_not_its_plain_text():
    text = b"DEK,00112233445566778899AABBCCDDEEFF\n" * 100
    sealed = SealedFile()
    sealed.write(text)
    sealed._file.seek(0)
    on_disk = sealed._file.read()
    assert len(on_disk) == len(text) and b"00112233445566778899" not in on_disk
    sealed.close()
