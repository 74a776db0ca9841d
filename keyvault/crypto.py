"""Wrapping one device key under a KEK.

The wrapping key is HKDF-SHA256(KEK) with an ``info`` that binds it to the device serial, the key
name and the KEK version, so a wrapped key copied onto another row (another device, another key
name, another KEK version) fails to unwrap. Wrapping is AES key wrap: RFC 3394 for lengths that
are a multiple of 8, RFC 5649 (with padding) otherwise. Both carry an integrity check.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap,
    aes_key_wrap_with_padding,
)

HKDF_SALT = b"kamkeys device key wrapping v1"
_PADDED_MARK = b"\x01"  # first byte of the stored value: 0 = RFC 3394, 1 = RFC 5649
_PLAIN_MARK = b"\x00"


class KeyUnwrapError(Exception):
    """A wrapped key failed its integrity check or its KEK is unknown. Carries no key bytes."""


@lru_cache(maxsize=16)
def _expand_mac(kek: bytes) -> Any:
    """HKDF-Extract, done once per KEK: an HMAC keyed with the pseudo-random key. Where the
    standard library exposes it, the OpenSSL HMAC object itself: its copy/update/digest skip a
    Python layer, a third of the derivation's time in a 100,000-key export."""
    prk = hmac.new(HKDF_SALT, kek, hashlib.sha256).digest()
    mac = hmac.new(prk, digestmod=hashlib.sha256)
    return getattr(mac, "_hmac", None) or mac


def _info(serial: str, name: str, kek_version: int) -> bytes:
    return f"kamkeys/devicekey|serial={serial}|name={name}|kek={kek_version}".encode()


def derive_wrapping_key(kek: bytes, serial: str, name: str, kek_version: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a 32-byte output: Expand is a single HMAC block."""
    mac = _expand_mac(kek).copy()
    mac.update(_info(serial, name, kek_version) + b"\x01")
    return mac.digest()


def key_unwrapper(kek: bytes, kek_version: int) -> Callable[[str, str, bytes], bytes]:
    """``unwrap_key`` for many keys under one KEK: the stream of a large download calls it once
    per key, so the per-KEK work is done here once."""
    base = _expand_mac(kek)
    suffix = f"|kek={kek_version}".encode() + b"\x01"

    def unwrap(serial: str, name: str, wrapped: bytes) -> bytes:
        mac = base.copy()
        mac.update(f"kamkeys/devicekey|serial={serial}|name={name}".encode() + suffix)
        wrapping_key = mac.digest()
        mark = wrapped[:1]
        try:
            if mark == _PLAIN_MARK:
                return aes_key_unwrap(wrapping_key, wrapped[1:])
            if mark == _PADDED_MARK:
                return aes_key_unwrap_with_padding(wrapping_key, wrapped[1:])
        except (InvalidUnwrap, ValueError):
            raise KeyUnwrapError(
                f"key {name} of serial {serial} failed its integrity check under KEK v{kek_version}"
            ) from None
        raise KeyUnwrapError(f"key {name} of serial {serial} has an unknown wrapping format")

    return unwrap


def key_wrapper(kek: bytes, kek_version: int) -> Callable[[str, str, bytes], bytes]:
    """``wrap_key`` for many keys under one KEK (an import wraps a million)."""
    base = _expand_mac(kek)
    suffix = f"|kek={kek_version}".encode() + b"\x01"

    def wrap(serial: str, name: str, key: bytes) -> bytes:
        if not key:
            raise ValueError("an empty key cannot be wrapped")
        mac = base.copy()
        mac.update(f"kamkeys/devicekey|serial={serial}|name={name}".encode() + suffix)
        if len(key) % 8 == 0 and len(key) >= 16:
            return _PLAIN_MARK + aes_key_wrap(mac.digest(), key)
        return _PADDED_MARK + aes_key_wrap_with_padding(mac.digest(), key)

    return wrap


def wrap_key(kek: bytes, kek_version: int, serial: str, name: str, key: bytes) -> bytes:
    """Wrap ``key`` for one (serial, key name, KEK version); the result is safe to store."""
    if not key:
        raise ValueError("an empty key cannot be wrapped")
    wrapping_key = derive_wrapping_key(kek, serial, name, kek_version)
    if len(key) % 8 == 0 and len(key) >= 16:
        return _PLAIN_MARK + aes_key_wrap(wrapping_key, key)
    return _PADDED_MARK + aes_key_wrap_with_padding(wrapping_key, key)


def unwrap_key(kek: bytes, kek_version: int, serial: str, name: str, wrapped: bytes) -> bytes:
    """The plain key, or KeyUnwrapError if the value was altered or belongs to another row."""
    wrapped = bytes(wrapped)
    wrapping_key = derive_wrapping_key(kek, serial, name, kek_version)
    mark, body = wrapped[:1], wrapped[1:]
    try:
        if mark == _PLAIN_MARK:
            return aes_key_unwrap(wrapping_key, body)
        if mark == _PADDED_MARK:
            return aes_key_unwrap_with_padding(wrapping_key, body)
    except (InvalidUnwrap, ValueError):
        raise KeyUnwrapError(
            f"key {name} of serial {serial} failed its integrity check under KEK v{kek_version}"
        ) from None
    raise KeyUnwrapError(f"key {name} of serial {serial} has an unknown wrapping format")


class SealedScratch:
    """Scratch space for plain key text that must wait (keys.json while keys.csv streams).

    A big one spills from memory to a temporary file, so everything written is encrypted first
    (AES-256-CTR) under a random key that lives only in this object: what reaches the disk, or
    stays there after a crash, is ciphertext nobody can read."""

    def __init__(self, max_memory: int) -> None:
        self._cipher = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16)))
        self._encryptor = self._cipher.encryptor()
        self._file = tempfile.SpooledTemporaryFile(max_size=max_memory, mode="w+b")  # noqa: SIM115

    def write(self, text: str) -> None:
        self._file.write(self._encryptor.update(text.encode("utf-8")))

    def read_back(self, block_size: int) -> Iterator[bytes]:
        """Everything written, as UTF-8 bytes, in blocks."""
        self._file.seek(0)
        decryptor = self._cipher.decryptor()
        while block := self._file.read(block_size):
            yield decryptor.update(block)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SealedScratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SealedFile(io.RawIOBase):
    """A temporary file for plain key text that arrives first and is read afterwards (a
    factory file uploaded to the admin): written in order, then read and seeked at will (a
    KEM zip is read from its end). Everything is encrypted (AES-256-CTR) under a random key
    that lives only in this object, as in SealedScratch, so what reaches the disk, or stays
    there after a crash, is ciphertext nobody can read. CTR lets any offset be decrypted."""

    def __init__(self) -> None:
        super().__init__()
        self._key = os.urandom(32)
        self._counter = int.from_bytes(os.urandom(16), "big")
        self._encryptor = self._cipher_at(0).encryptor()
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._size = 0
        self._position = 0

    def _cipher_at(self, offset: int) -> Cipher[modes.CTR]:
        counter = (self._counter + offset // 16) % (1 << 128)
        return Cipher(algorithms.AES(self._key), modes.CTR(counter.to_bytes(16, "big")))

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        """Append (the upload arrives in order): the file's end, wherever it was read."""
        raw = bytes(data)
        self._file.seek(self._size)
        self._file.write(self._encryptor.update(raw))
        self._size += len(raw)
        self._position = self._size
        return len(raw)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        skip = self._position % 16
        self._file.seek(self._position - skip)
        sealed = self._file.read(skip + wanted)
        plain = self._cipher_at(self._position - skip).decryptor().update(sealed)[skip:]
        view[: len(plain)] = plain
        self._position += len(plain)
        return len(plain)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()
