"""The KEM format (Kamstrup READy, wmbusmeters' kem tools): streaming writer and reader.

Format facts (docs/file-formats.md, "KEM"): a plain zip with one ``*.kem`` member at
the root; the member is XML Encryption with an unprefixed ``<CipherValue>`` whose base64 sits on
one line; AES-128-CBC with key = IV = the password's UTF-8 bytes zero-padded to 16; the bare
ciphertext (no IV prepended); PKCS#7 padding; the plaintext is one line of UTF-8 XML starting
``<MetersInOrder`` with one ``Meter`` per device.
"""

from __future__ import annotations

import base64
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any, cast
from xml.etree.ElementTree import Element, XMLPullParser
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from keyfiles.meter_types import ascii_text, default_consumption_type, kem_name

KEM_MAX_PASSWORD_BYTES = 16
METER_CHILDREN = (
    "MeterName",
    "ConsumptionType",
    "MeterNo",
    "SerialNo",
    "VendorId",
    "ConfigNo",
    "TypeNo",
    "DEK",
)
ENVELOPE_HEAD = (
    b'<?xml version="1.0" encoding="utf-8"?>\r\n'
    b'<EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element" '
    b'xmlns="http://www.w3.org/2001/04/xmlenc#">\r\n'
    b'<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>\r\n'
    b"<CipherData>\r\n<CipherValue>"
)
ENVELOPE_TAIL = b"</CipherValue>\r\n</CipherData>\r\n</EncryptedData>\r\n"


class KemError(Exception):
    """The KEM input cannot be read (wrong password, not a KEM file, broken XML)."""


def kem_key(password: str) -> bytes:
    """The AES-128 key (and IV): the password's UTF-8 bytes zero-padded to 16 bytes."""
    raw = password.encode("utf-8")
    if not 1 <= len(raw) <= KEM_MAX_PASSWORD_BYTES:
        raise KemError(
            f"a KEM password is 1 to {KEM_MAX_PASSWORD_BYTES} bytes (this one is {len(raw)})"
        )
    return raw.ljust(16, b"\0")


def _value(text: Any, *, no_colon: bool = False) -> str:
    """ASCII, no whitespace at the ends, XML-escaped; ':' removed where readers split on it."""
    if text is None or text == "":
        return ""
    value = str(text)
    if value.isascii() and value.isalnum():  # serials, type numbers: nothing to clean
        return value
    return _cleaned(value, no_colon)


@lru_cache(maxsize=4096)
def _cleaned(value: str, no_colon: bool) -> str:
    value = re.sub(r"[\x00-\x1f\x7f]", "", ascii_text(value)).strip()
    if no_colon:
        value = value.replace(":", "")
    return escape(value)


@lru_cache(maxsize=4096)
def _head(device_type: str, consumption_type: str) -> str:
    consumption = _value(consumption_type) or _value(default_consumption_type(device_type))
    return (
        f"<Meter><MeterName>{_value(kem_name(device_type))}</MeterName>"
        f"<ConsumptionType>{consumption}</ConsumptionType>"
    )


@lru_cache(maxsize=4096)
def _tail(manufacturer: str, config_no: str, type_no: str) -> str:
    return (
        f"<VendorId>{_value(manufacturer or 'KAM')}</VendorId>"
        f"<ConfigNo>{_value(config_no)}</ConfigNo><TypeNo>{_value(type_no)}</TypeNo>"
    )


def meter_element(device: Any, dek: bytes) -> str:
    """One <Meter> element of a device (a keystream.DeviceRow); every child present (MeterName,
    ConsumptionType, MeterNo, SerialNo, VendorId, ConfigNo, TypeNo, DEK), all but ConfigNo and
    TypeNo non-empty. The parts shared by every meter of a type are built once."""
    serial = _value(device.serial)
    meter_no = serial if serial.isalnum() else _value(device.serial, no_colon=True) or serial
    return (
        _head(device.device_type or "", device.consumption_type or "")
        + f"<MeterNo>{meter_no}</MeterNo><SerialNo>{serial}</SerialNo>"
        + _tail(device.manufacturer or "", device.config_no or "", device.type_no or "")
        + f"<DEK>{dek.hex().upper()}</DEK></Meter>"
    )


class _Base64Stream:
    """Base64 of a byte stream, emitted in pieces that concatenate to one unwrapped line."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self._rest + data
        cut = len(data) - len(data) % 3
        self._rest = data[cut:]
        return base64.b64encode(data[:cut])

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        return base64.b64encode(rest)


def iter_kem_document(meters: Iterable[str], password: str) -> Iterator[bytes]:
    """The .kem member's bytes, produced as the meters arrive (constant memory)."""
    key = kem_key(password)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key)).encryptor()
    padder = padding.PKCS7(128).padder()
    b64 = _Base64Stream()
    yield ENVELOPE_HEAD
    pending: list[str] = ["<MetersInOrder>"]
    size = len(pending[0])
    for meter in meters:
        pending.append(meter)
        size += len(meter)
        if size >= 65536:
            yield b64.feed(encryptor.update(padder.update("".join(pending).encode("utf-8"))))
            pending, size = [], 0
    pending.append("</MetersInOrder>")
    tail = padder.update("".join(pending).encode("utf-8")) + padder.finalize()
    yield b64.feed(encryptor.update(tail) + encryptor.finalize()) + b64.finish()
    yield ENVELOPE_TAIL


# --- reading -----------------------------------------------------------------------------------


@dataclass
class KemMeter:
    index: int  # 1-based position of the Meter element, the "line" of the import report
    values: dict[str, str]


def _open_kem_member(handle: IO[bytes]) -> tuple[zipfile.ZipFile | None, IO[bytes]]:
    """A KEM export is a zip holding one .kem member; a bare .kem file is accepted too."""
    start = handle.read(4)
    handle.seek(0)
    if start == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(handle)
        except zipfile.BadZipFile:
            raise KemError("the file is a damaged zip archive") from None
        members = [info for info in archive.infolist() if info.filename.lower().endswith(".kem")]
        if len(members) != 1:
            archive.close()
            raise KemError("the zip must hold exactly one .kem file")
        try:
            return archive, archive.open(members[0])
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile):
            archive.close()  # a password on the zip itself, or a compression zipfile lacks
            raise KemError(
                "the .kem file in the zip is encrypted or compressed in a way that cannot be "
                "read: zip it again without a zip password"
            ) from None
    return None, handle


# What reading a damaged zip member raises: a bad CRC, corrupt compressed data, a short member.
_DAMAGED_MEMBER = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


def _read(stream: IO[bytes], size: int) -> bytes:
    try:
        return stream.read(size)
    except _DAMAGED_MEMBER:
        raise KemError("the file is a damaged zip archive") from None


def _cipher_base64(stream: IO[bytes], chunk: int = 1 << 16) -> Iterator[bytes]:
    """The base64 text between <CipherValue> and </CipherValue>, whitespace removed."""
    open_tag, close_tag = b"<CipherValue>", b"</CipherValue>"
    buffer = b""
    while True:  # find the open tag
        data = _read(stream, chunk)
        if not data:
            raise KemError("no <CipherValue> found: this is not a KEM file")
        buffer += data
        position = buffer.find(open_tag)
        if position >= 0:
            buffer = buffer[position + len(open_tag) :]
            break
        buffer = buffer[-len(open_tag) :]
        if len(buffer) > 1 << 20:
            raise KemError("no <CipherValue> found: this is not a KEM file")
    while True:
        position = buffer.find(close_tag)
        if position >= 0:
            yield re.sub(rb"\s+", b"", buffer[:position])
            return
        keep = len(close_tag)
        yield re.sub(rb"\s+", b"", buffer[:-keep])
        buffer = buffer[-keep:]
        data = _read(stream, chunk)
        if not data:
            raise KemError("the KEM file ends inside <CipherValue>")
        buffer += data


def _decrypt_stream(b64_pieces: Iterator[bytes], password: str) -> Iterator[bytes]:
    """Plaintext pieces; the last block's padding (PKCS#7 or zeros) and control bytes removed."""
    key = kem_key(password)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key)).decryptor()
    rest = b""
    held = b""
    for piece in b64_pieces:
        text = rest + piece
        cut = len(text) - len(text) % 4
        rest = text[cut:]
        try:
            raw = base64.b64decode(text[:cut], validate=True)
        except ValueError:
            raise KemError("the CipherValue is not valid base64") from None
        plain = held + decryptor.update(raw)
        held, plain = plain[-16:], plain[:-16]
        if plain:
            yield plain
    if rest:
        raise KemError("the CipherValue is not valid base64")
    try:
        plain = held + decryptor.finalize()
    except ValueError:  # cryptography: data left over that is not a whole block
        plain = b""
    if len(plain) % 16 or not plain:
        raise KemError("the CipherValue is not whole AES blocks: the file is damaged")
    yield plain.rstrip(bytes(range(0, 32)))


def iter_kem_meters(handle: IO[bytes], password: str) -> Iterator[KemMeter]:
    """Stream the meters of a KEM file. KemError on a wrong password or a malformed file."""
    archive, stream = _open_kem_member(handle)
    parser = XMLPullParser(events=("start", "end"))
    index = 0
    started = False
    root: Element | None = None
    try:
        for plain in _decrypt_stream(_cipher_base64(stream), password):
            if not started:
                if not plain.lstrip().startswith(b"<"):
                    raise KemError("the password is wrong or the file is damaged")
                started = True
            try:
                parser.feed(plain)
                # Only "start" and "end" events were asked for: each carries an Element.
                events = cast("list[tuple[str, Element]]", list(parser.read_events()))
            except Exception:  # noqa: BLE001 - expat's ParseError, wrong password
                raise KemError("the password is wrong or the file is damaged") from None
            for event, element in events:
                tag = element.tag.rsplit("}", 1)[-1]
                if event == "start" and root is None:
                    if tag != "MetersInOrder":
                        raise KemError("the decrypted file does not start with <MetersInOrder>")
                    root = element
                elif event == "end" and tag == "Meter":
                    index += 1
                    values = {
                        child.tag.rsplit("}", 1)[-1]: (child.text or "").strip()
                        for child in element
                    }
                    assert root is not None  # set by the first start event
                    root.clear()  # constant memory: drop the meters already read
                    yield KemMeter(index=index, values=values)
        try:
            parser.close()
        except Exception:  # noqa: BLE001
            raise KemError("the password is wrong or the file is damaged") from None
    finally:
        if archive is not None:
            stream.close()
            archive.close()
