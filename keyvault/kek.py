"""The key-encryption-key (KEK) ring.

A ring is a set of versioned 32-byte KEKs; the newest (highest version) wraps new keys, older
ones only unwrap until ``rotate_kek`` has rewrapped everything. The ring comes from
``KAMKEYS_KEKS`` ("1:<base64>,2:<base64>") or from the file ``KAMKEYS_KEK_FILE`` (one
"version:base64" per line, ``#`` comments allowed). ``KekSource`` is the whole interface the rest
of keyvault uses, so a KMS or HSM client can replace the file later.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from pathlib import Path
from typing import Protocol

from django.conf import settings

KEK_BYTES = 32


class KekRingError(Exception):
    """The KEK ring is missing, empty or malformed. The message never contains key material."""


class KekSource(Protocol):
    """What keyvault needs of a KEK provider."""

    def current(self) -> tuple[int, bytes]:
        """The newest KEK as (version, 32 bytes)."""
        ...

    def get(self, version: int) -> bytes:
        """The KEK of one version; KekRingError if the ring does not hold it."""
        ...

    def versions(self) -> list[int]:
        """Every version in the ring, oldest first."""
        ...


class StaticKekRing:
    """A ring held in memory, parsed from the environment or a key file."""

    def __init__(self, keks: dict[int, bytes]) -> None:
        if not keks:
            raise KekRingError("the KEK ring is empty: give at least one 'version:base64' entry")
        for version, kek in keks.items():
            if version < 1:
                raise KekRingError(f"KEK version {version} is invalid: versions start at 1")
            if len(kek) != KEK_BYTES:
                raise KekRingError(
                    f"KEK version {version} is {len(kek)} bytes; it must be {KEK_BYTES} bytes"
                )
        self._keks = dict(keks)
        self._newest = max(self._keks)

    def current(self) -> tuple[int, bytes]:
        return self._newest, self._keks[self._newest]

    def get(self, version: int) -> bytes:
        try:
            return self._keks[version]
        except KeyError:
            raise KekRingError(f"the KEK ring holds no version {version}") from None

    def versions(self) -> list[int]:
        return sorted(self._keks)


def parse_ring(entries: list[str], *, where: str) -> dict[int, bytes]:
    """Parse "version:base64" entries; errors name the entry's position, never its value."""
    keks: dict[int, bytes] = {}
    for index, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        version_text, sep, encoded = entry.partition(":")
        if not sep:
            raise KekRingError(f"{where}, entry {index}: expected 'version:base64'")
        try:
            version = int(version_text.strip())
        except ValueError:
            raise KekRingError(f"{where}, entry {index}: the version is not a number") from None
        try:
            kek = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KekRingError(f"{where}, entry {index}: the key is not valid base64") from None
        if version in keks:
            raise KekRingError(f"{where}: version {version} appears twice")
        if len(kek) != KEK_BYTES:
            raise KekRingError(
                f"{where}, entry {index}: the key is {len(kek)} bytes; it must be {KEK_BYTES}"
            )
        keks[version] = kek
    if not keks:
        raise KekRingError(f"{where}: the KEK ring is empty")
    return keks


def create_dev_kek_file(path: Path) -> None:
    """Write a fresh development ring (one random KEK, version 1) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = "1:" + base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode() + "\n"
    header = "# kamkeys development KEK ring: version:base64, newest = highest version\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first; use theirs
    with os.fdopen(fd, "w") as handle:
        handle.write(header + line)


def load_ring_from_settings() -> StaticKekRing:
    """Build the ring from KAMKEYS_KEKS, else KAMKEYS_KEK_FILE (created in development)."""
    if settings.KAMKEYS_KEKS:
        return StaticKekRing(parse_ring(settings.KAMKEYS_KEKS.split(","), where="KAMKEYS_KEKS"))
    if not settings.KAMKEYS_KEK_FILE:
        raise KekRingError("no KEK configured: set KAMKEYS_KEKS or KAMKEYS_KEK_FILE")
    path = Path(settings.KAMKEYS_KEK_FILE)
    if not path.exists() and getattr(settings, "KAMKEYS_CREATE_DEV_KEK", False):
        create_dev_kek_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KekRingError(f"KAMKEYS_KEK_FILE {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KekRingError(
            f"KAMKEYS_KEK_FILE {str(path)!r} cannot be read ({type(exc).__name__})"
        ) from None
    return StaticKekRing(parse_ring(text.splitlines(), where=f"KAMKEYS_KEK_FILE {str(path)!r}"))


_lock = threading.Lock()
_cache: dict[tuple[str, str], KekSource] = {}
_override: KekSource | None = None


def get_kek_source() -> KekSource:
    """The ring for the current settings (cached per setting values, so tests can swap it)."""
    if _override is not None:
        return _override
    cache_key = (settings.KAMKEYS_KEKS, settings.KAMKEYS_KEK_FILE)
    source = _cache.get(cache_key)
    if source is None:
        with _lock:
            source = _cache.get(cache_key)
            if source is None:
                source = load_ring_from_settings()
                _cache[cache_key] = source
    return source


def set_kek_source(source: KekSource | None) -> None:
    """Install another KEK provider (a KMS client), or None to go back to the settings."""
    global _override
    _override = source


def reset_cache() -> None:
    """Forget loaded rings, e.g. after a key file was edited to add a new version."""
    with _lock:
        _cache.clear()


def generate_kek_entry(version: int) -> str:
    """A new "version:base64" line for an operator adding a KEK to the ring."""
    return f"{version}:" + base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode()
