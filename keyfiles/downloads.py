"""Download files: the one place that turns a selection of devices into an encrypted file.

The web download and ``manage.py export_keys`` both call ``build_download``: it asks
``devices.access.downloadable_devices`` which devices the actor may download, checks the
password, writes the audit event, and returns a ``Download`` whose ``chunks`` produce the file
piece by piece (constant memory; the web view wraps them in a StreamingHttpResponse).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyzipper
from django.conf import settings
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy, ngettext

from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from devices.access import Operator, downloadable_devices
from devices.models import Device
from keyfiles.archive_sink import FLUSH_BYTES, ChunkSink
from keyfiles.kem import iter_kem_document, meter_element
from keyfiles.keystream import TYPE_JSON_MEMBERS, json_members, plain_keys_of, selected_ids
from keyfiles.meter_types import ascii_text, kem_name, wmbusmeters_driver
from keyfiles.passwords import CheckedFilePassword, checked_file_password
from keyvault.crypto import SealedScratch

FORMATS = [
    ("zip", gettext_lazy("Encrypted ZIP (recommended)")),
    ("kem", gettext_lazy("KEM (Kamstrup READy / wmbusmeters)")),
]
FORMAT_CODES = {code for code, _label in FORMATS}
# The .kem member is base64 of ciphertext: deflate saves a quarter of the size for most of the
# time the export takes, so it is stored in deflate's "no compression" blocks (still method 8,
# which every zip reader, Java's ZipInputStream included, streams without trouble).
KEM_COMPRESSLEVEL = 0
CSV_HEADER = ["serial", "type", "order_no", "key_name", "key_hex"]
# keys.json waits in memory up to this size, then in a temporary file: sealed either way.
JSON_SCRATCH_MEMORY = 8 << 20
HEAD_DEVICES = 1000  # unwrapped before the download is audited and its response starts
PlainKeys = Iterable[tuple[Any, dict[str, bytes]]]  # (keystream.DeviceRow, plain keys)


@dataclass
class Download:
    filename: str
    content_type: str
    chunks: Iterator[bytes]
    count: int = 0


# --- encrypted ZIP -------------------------------------------------------------------------------


def _readme(
    *, count: int, keys: int, without_keys: int, meter_files: bool, meters: int, limit: int
) -> str:
    """The README inside the ZIP, in the language of the person who asked for the file."""
    title = gettext("kamkeys key file")
    created = gettext("Created %(when)s UTC for %(devices)s, %(keys)s.") % {
        "when": f"{timezone.now():%Y-%m-%d %H:%M}",
        "devices": ngettext("%(count)d device", "%(count)d devices", count) % {"count": count},
        "keys": ngettext("%(count)d key", "%(count)d keys", keys) % {"count": keys},
    }
    lines = [
        title,
        "=" * len(title),
        "",
        created,
        "",
        gettext(
            "This archive is encrypted with AES-256 (WinZip AES). Windows' built-in zip "
            "extractor cannot open it: use 7-Zip (https://www.7-zip.org/), WinZip, or "
            "`7z x file.zip` / `unzip` with AES support on Linux and macOS."
        ),
        "",
        *_readme_contents(meter_files=meter_files),
        gettext(
            "In keys.csv a value starting with = + - or @ has a ' in front, so that spreadsheet "
            "programs show it as text instead of running it as a formula. keys.json holds every "
            "value exactly as stored."
        ),
        "",
    ]
    if not meter_files and meters:
        lines += _readme_meter_files_loop(meters=meters, limit=limit)
    if without_keys:
        lines += [
            ngettext(
                "%(count)d selected device has no key stored and is not listed.",
                "%(count)d selected devices have no key stored and are not listed.",
                without_keys,
            )
            % {"count": without_keys},
            "",
        ]
    lines += [
        gettext("Keep this file and its password apart, and delete the extracted keys when done."),
        "",
    ]
    return "\r\n".join(lines)


def _readme_contents(*, meter_files: bool) -> list[str]:
    contents = gettext("Contents")
    lines = [
        contents,
        "-" * len(contents),
        "keys.csv      " + gettext("one row per key: serial, type, order_no, key_name, key_hex"),
        "keys.json     " + gettext("the same per device, with type number, config number and kind"),
    ]
    if meter_files:
        lines.append(
            "wmbusmeters/  "
            + gettext("a wmbusmeters meter file per meter (for /etc/wmbusmeters.d/)")
        )
    return [*lines, "README.txt    " + gettext("this file"), ""]


def _readme_meter_files_loop(*, meters: int, limit: int) -> list[str]:
    """Too many meters for a file each in the archive: how to make them from keys.csv."""
    return [
        gettext(
            "The selection holds %(meters)d meters, more than the %(limit)d for which "
            "wmbusmeters meter files are written into the archive (each encrypted member "
            "costs time). Make them from keys.csv with this shell loop (driver=auto lets "
            "wmbusmeters pick):"
        )
        % {"meters": meters, "limit": limit},
        "",
        "  mkdir -p wmbusmeters && tail -n +2 keys.csv | while IFS=, read -r s t o n k; do "
        "[ \"$n\" = DEK ] && printf 'name=m%s\\ndriver=auto\\nid=%s\\nkey=%s\\n' "
        '"$s" "$s" "$k" > "wmbusmeters/$s"; done',
        "",
    ]


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"): =HYPERLINK("http://…?"&E2) would send the row's key away.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: str) -> str:
    """Every keys.csv cell of stored text goes through here: quoted only when it must be, and
    text a spreadsheet would run as a formula gets a leading apostrophe. Letters and digits
    alone (serials, most order numbers, key names) need neither."""
    return value if value.isalnum() else _quoted_csv_cell(value)


@lru_cache(maxsize=4096)
def _quoted_csv_cell(value: str) -> str:
    """The slow path (types repeat from row to row: cached)."""
    if value.startswith(FORMULA_START):
        value = "'" + value
    if any(char in value for char in ',"\r\n') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


_json_shared = json_members(TYPE_JSON_MEMBERS)


def _json_string(value: str) -> str:
    """A JSON string; letters and digits alone need no escaping (serials, most order numbers)."""
    return f'"{value}"' if value.isalnum() else json.dumps(value, ensure_ascii=False)


def _json_device_fields(device: Any) -> str:
    """The JSON members of a device (a keystream.DeviceRow) but its serial and keys: those of
    one type are built once (the order number nearly always differs from one device to the
    next of a type)."""
    shared = _json_shared(device)
    return f'{shared}, "order_no": {_json_string(device.order_no)}'


def _meter_file(device: Any, dek: bytes) -> str:
    serial = ascii_text(device.serial)
    name = f"{kem_name(device.device_type or '')}_{serial}"
    driver = wmbusmeters_driver(device.device_type or "")
    return f"name={name}\ndriver={driver}\nid={serial}\nkey={dek.hex().upper()}\n"


@dataclass
class _Tally:
    """What the README reports, counted as the devices stream by."""

    devices: int = 0
    keys: int = 0
    without_keys: int = 0
    meters: int = 0


class _Rows:
    """keys.csv lines and keys.json objects of one device at a time. The cells that repeat
    (key names, types) are built once."""

    def __init__(self) -> None:
        self.name_cells: dict[str, tuple[str, str]] = {}  # a handful of names: CSV and JSON
        self.written = 0  # JSON objects so far: every one after the first starts with a comma

    def of(self, device: Any, plain: dict[str, bytes]) -> tuple[list[str], str]:
        serial_csv = _csv_cell(device.serial)
        row_middle = _quoted_csv_cell(device.device_type) + "," + _csv_cell(device.order_no)
        csv_lines = []
        key_json = []
        for name, key in plain.items():
            # key_hex is written here from bytes: [0-9A-F] only, never a formula.
            key_hex = key.hex().upper()
            cells = self.name_cells.get(name)
            if cells is None:
                cells = self.name_cells[name] = (_csv_cell(name), _json_string(name))
            csv_lines.append(f"{serial_csv},{row_middle},{cells[0]},{key_hex}\r\n")
            key_json.append(f'{cells[1]}: "{key_hex}"')
        json_object = (
            f"{',' if self.written else ''}\n "
            f'{{"serial": {_json_string(device.serial)}, {_json_device_fields(device)}, '
            f'"keys": {{{", ".join(key_json)}}}}}'
        )
        self.written += 1
        return csv_lines, json_object


ROWS_PER_WRITE = 1000  # devices whose lines go into the archive in one write


def _keys_csv(
    member: Any,
    sink: ChunkSink,
    plain_keys: PlainKeys,
    json_text: SealedScratch,
    tally: _Tally,
    meter_files: list[tuple[str, str]],
    limit: int,
) -> Iterator[bytes]:
    """Write keys.csv into the open archive member and keys.json's objects to the sealed
    scratch, a thousand devices at a time; hand on the archive's bytes as they pile up.
    ``meter_files`` collects the wmbusmeters files while there are at most ``limit`` meters;
    past that it is emptied (the README then gives a shell loop instead)."""
    rows = _Rows()
    csv_lines: list[str] = [",".join(CSV_HEADER) + "\r\n"]
    json_parts: list[str] = []
    pending = 0
    for device, plain in plain_keys:
        tally.devices += 1
        is_meter = device.kind == Device.Kind.METER
        tally.meters += is_meter
        if is_meter and tally.meters > limit and meter_files:
            meter_files.clear()  # too many meters for a file each: none is written
        if not plain:
            tally.without_keys += 1
            continue
        lines, json_object = rows.of(device, plain)
        csv_lines += lines
        json_parts.append(json_object)
        tally.keys += len(lines)
        if is_meter and tally.meters <= limit and "DEK" in plain:
            meter_files.append((device.serial, _meter_file(device, plain["DEK"])))
        pending += 1
        if pending >= ROWS_PER_WRITE:
            member.write("".join(csv_lines).encode("utf-8"))
            json_text.write("".join(json_parts))
            csv_lines.clear()
            json_parts.clear()
            pending = 0
            if sink.ready():
                yield sink.drain()
    member.write("".join(csv_lines).encode("utf-8"))
    json_text.write("".join(json_parts))


def _copy_member(member: Any, sink: ChunkSink, blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Write blocks into an open archive member, handing on the archive's bytes."""
    for block in blocks:
        member.write(block)
        if sink.ready():
            yield sink.drain()


def _small_members(
    archive: Any, sink: ChunkSink, members: Iterable[tuple[str, str]]
) -> Iterator[bytes]:
    for name, content in members:
        archive.writestr(name, content)
        if sink.ready():
            yield sink.drain()


def _zip_chunks(
    plain_keys: PlainKeys, password: str, language: str | None = None
) -> Iterator[bytes]:
    """The archive: keys.csv streamed (keys.json's text set aside, sealed, meanwhile), then
    keys.json, the wmbusmeters files, and the README with what was counted on the way.

    The meter files are written when the file holds at least one meter and at most
    KAMKEYS_ZIP_METER_FILES_LIMIT: they follow keys.json, so that is known by then, from the
    devices themselves (no query before the first byte to count them)."""
    sink = ChunkSink()
    tally = _Tally()
    meter_files: list[tuple[str, str]] = []
    limit = settings.KAMKEYS_ZIP_METER_FILES_LIMIT
    with (
        SealedScratch(max_memory=JSON_SCRATCH_MEMORY) as json_text,
        pyzipper.AESZipFile(
            sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        ) as archive,
    ):
        archive.setpassword(password.encode("utf-8"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        json_text.write("[")
        with archive.open("keys.csv", "w") as member:
            yield sink.drain()  # the archive's first bytes: the browser's download starts now
            yield from _keys_csv(member, sink, plain_keys, json_text, tally, meter_files, limit)
        json_text.write("\n]\n")
        with archive.open("keys.json", "w") as member:
            yield from _copy_member(member, sink, json_text.read_back(FLUSH_BYTES))
        write_meter_files = 0 < tally.meters <= limit
        yield from _small_members(
            archive, sink, ((f"wmbusmeters/{serial}", text) for serial, text in meter_files)
        )
        # The archive streams after the view returned: its README is written in the language
        # of the request that asked for it, not whatever is active then.
        with translation.override(language):
            readme = _readme(
                count=tally.devices,
                keys=tally.keys,
                without_keys=tally.without_keys,
                meter_files=write_meter_files,
                meters=tally.meters,
                limit=limit,
            )
        archive.writestr("README.txt", readme)
    yield sink.drain()


# --- KEM -----------------------------------------------------------------------------------------


def _kem_chunks(plain_keys: PlainKeys, password: str, member_name: str) -> Iterator[bytes]:
    def meters() -> Iterator[str]:
        for device, plain in plain_keys:
            dek = plain.get("DEK")
            if dek is not None:
                yield meter_element(device, dek)

    sink = ChunkSink()
    with (
        zipfile.ZipFile(
            sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=KEM_COMPRESSLEVEL
        ) as archive,
        archive.open(member_name, "w") as member,
    ):
        yield sink.drain()  # the archive's first bytes: the browser's download starts now
        for piece in iter_kem_document(meters(), password):
            member.write(piece)
            if sink.ready():
                yield sink.drain()
    yield sink.drain()


# --- entry point ---------------------------------------------------------------------------


def build_download(
    *,
    which: Q | None = None,
    fmt: str,
    password: str | CheckedFilePassword,
    context: AuditContext,
    operator: Operator | None = None,
    action: str = Action.DOWNLOAD,
    audit_detail: dict[str, Any] | None = None,
    checked_ids: Sequence[int] | None = None,
) -> Download:
    """Check the password for the format (unless the form already did: a
    ``CheckedFilePassword`` of this format), audit the disclosure, and return the file stream of
    ``downloadable_devices(context.actor)`` (all devices for ``operator=OPERATOR``, commands
    only) narrowed by the condition ``which``: the caller can never widen it.

    ``checked_ids`` instead of ``which``: the ids, distinct and ascending, of devices the
    caller has just read inside ``downloadable_devices(context.actor)`` in this same request
    (the API's serials lookup, through ``api.access``); they are used as they are, without a
    second pass over the selection before the first byte.

    Raises django.core.exceptions.ValidationError for a bad format or password, and
    keyvault.crypto.KeyUnwrapError when a stored key fails its integrity check (audited as
    "unwrap_failed"). A failure among the first HEAD_DEVICES devices (every selection of up
    to that size) stops before anything is recorded as disclosed. ``audit_detail`` adds to the
    event's detail (the API names its channel and token)."""
    password_text = checked_file_password(fmt, password)
    if checked_ids is not None:
        device_ids = checked_ids
    else:
        assert which is not None, "build_download needs which or checked_ids"
        downloader = operator if operator is not None else context.actor
        # Sorted and distinct: a selection built with joins may name a device twice.
        device_ids = selected_ids(downloadable_devices(downloader).filter(which).order_by())
    # The first devices are unwrapped now: a key that fails (KeyUnwrapError, audited) then
    # stops a small download before any response starts and before it is recorded as
    # disclosed. The rest stream while the file is written.
    head_ids, rest_ids = device_ids[:HEAD_DEVICES], device_ids[HEAD_DEVICES:]
    head = list(plain_keys_of(head_ids))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    audit.record(
        action,
        context=context,
        object_type="device",
        object_ids=device_ids[: audit.MAX_OBJECT_IDS],  # all the event keeps (the count is exact)
        count=len(device_ids),
        detail={**(audit_detail or {}), "format": fmt},
    )
    plain_keys = itertools.chain(head, plain_keys_of(rest_ids))
    if fmt == "zip":
        filename = f"kamkeys-keys-{stamp}.zip"
        chunks = _zip_chunks(plain_keys, password_text, translation.get_language())
    else:
        filename = f"kamkeys-keys-{stamp}-kem.zip"
        chunks = _kem_chunks(plain_keys, password_text, f"kamkeys-keys-{stamp}.kem")
    return Download(
        filename=filename, content_type="application/zip", chunks=chunks, count=len(device_ids)
    )


def write_download(download: Download, path: str) -> int:
    """Write a download to a file readable by its owner only (the CLI); returns its size.

    The file is written beside ``path`` under a temporary name (mode 0600) and renamed over
    it only once whole: a key failing deep in the stream, a full disk or an interrupt leaves
    no part of the new file, and a file already at ``path`` (yesterday's export) as it was."""
    written = 0
    directory = os.path.dirname(os.path.abspath(path))
    fd, part = tempfile.mkstemp(prefix=".kamkeys-export-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in download.chunks:
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(part)
        raise
    return written
