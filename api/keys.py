"""Keys as a streamed JSON document: the download's key stream (keyfiles.keystream, through
api.access), written as JSON piece by piece in constant memory. The devices come in parts (the
first HEAD_DEVICES serials, then those of LATER_PARTS, then the rest), each audited before its
first key is written, so the first keys leave before the last serials are looked up. The
encrypted ZIP and KEM files are the web download's own (keyfiles.downloads)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from api import access, selectors
from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from keyfiles.keystream import TYPE_JSON_MEMBERS, json_members

HEAD_DEVICES = 1000  # unwrapped before the disclosure is audited and the response starts
# The serials of the parts after the first; the rest are the last. They are looked up ahead, one
# after the other, while the earlier parts stream (api.devicesets.in_parts). Each is small enough
# to be found before the stream reaches it: the second (5,000 serials, probed in the
# organization's index in ~25-50 ms) before the first has left, the third (15,000) while the
# second streams (~50 ms of unwrapping), the rest (a scan of the organization's devices,
# ~250 ms for 79,000) while the third does. With one second part of 19,000 (~200 ms to find),
# the stream stood still for ~200 ms after the first 1,000 devices.
LATER_PARTS = (5_000, 15_000)
FLUSH_CHARS = 1 << 16
# The members but serial, order_no and keys, in document order: keys.json's, and production_year.
_shared_members = json_members((*TYPE_JSON_MEMBERS, ("production_year", "production_year")))


def audit_detail(token: Any) -> dict[str, Any]:
    """What every API disclosure event says of its channel: the token's id and name."""
    return {"token_id": token.pk, "token_name": token.name}


def _string(value: str) -> str:
    """A JSON string; letters and digits alone (serials, most order numbers) need no escaping."""
    return f'"{value}"' if value.isalnum() and value.isascii() else json.dumps(value)


@lru_cache(maxsize=256)
def _key_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _device_json(device: Any, keys: dict[str, bytes]) -> str:
    """One device (a keystream.DeviceRow) with its keys (most devices hold one: no list)."""
    if len(keys) == 1:
        ((name, key),) = keys.items()
        key_members = f'{_key_name(name)}: "{key.hex().upper()}"'
    else:
        key_members = ", ".join(
            [f'{_key_name(name)}: "{key.hex().upper()}"' for name, key in keys.items()]
        )
    return (
        f'{{"serial": {_string(device.serial)}, {_shared_members(device)}, '
        f'"order_no": {_string(device.order_no)}, "keys": {{{key_members}}}}}'
    )


class _Document:
    """The JSON document's text, flushed in pieces of about FLUSH_CHARS characters."""

    def __init__(self, preamble: str) -> None:
        self.parts = [preamble]
        self.size = len(preamble)
        self.count = 0

    def add(self, devices: Iterable[tuple[Any, dict[str, bytes]]]) -> Iterator[bytes]:
        """The devices' text, each after its separator; counters kept in locals (a third of
        the writing's CPU for 100,000 devices went to attribute updates and concatenation)."""
        append, device_json = self.parts.append, _device_json
        count, size = self.count, self.size
        for device, keys in devices:
            piece = device_json(device, keys)
            append(",\n " if count else "\n ")
            append(piece)
            count += 1
            size += len(piece)
            if size >= FLUSH_CHARS:
                self.count = count
                yield self.flush()
                size = 0
        self.count, self.size = count, size

    def flush(self) -> bytes:
        text = "".join(self.parts)
        self.parts.clear()
        self.size = 0
        return text.encode("utf-8")


Part = tuple[Sequence[int], list[str]]  # the ids (ascending) of a part, its unknown serials


def _record(token: Any, ids: Sequence[int], part: int | None, context: AuditContext) -> None:
    detail = {**audit_detail(token), "format": "json"}
    if part is not None:
        detail["part"] = part
    audit.record(
        Action.DOWNLOAD,
        context=context,
        object_type="device",
        object_ids=ids,
        count=len(ids),
        detail=detail,
    )


def _chunks(
    token: Any,
    head: list[tuple[Any, dict[str, bytes]]],
    first: Part,
    later: Iterator[Part],
    *,
    invalid_serials: list[str],
    context: AuditContext,
) -> Iterator[bytes]:
    """The document: the first part's devices, then each later part's, audited before any of
    its keys is written; the counts and the unknown serials at the end, once all are known.
    Before each later part the token is asked again: once it is revoked or expired (or its
    user deactivated) the document stops, unclosed, with what was already audited, so no key
    of a later part leaves and no client takes the answer for complete."""
    ids, unknown = first
    document = _Document('{"format": "json", "devices": [')
    yield from document.add(head)
    if len(ids) > len(head):
        yield from document.add(access.plain_keys(ids[len(head) :]))
    unknown = list(unknown)
    for number, (ids, part_unknown) in enumerate(later, start=2):
        unknown += part_unknown
        if ids and not selectors.token_still_works(token):
            close_parts = getattr(later, "close", None)
            if close_parts is not None:  # the parts found ahead, and their connection, end now
                close_parts()
            yield document.flush()
            return
        if ids:
            _record(token, ids, number, context)
            yield from document.add(access.plain_keys(ids))
    document.parts.append(
        "\n], "
        f'"count": {document.count}, '
        f'"unknown_serials": {json.dumps(unknown)}, '
        f'"invalid_serials": {json.dumps(invalid_serials, ensure_ascii=False)}}}\n'
    )
    yield document.flush()


def json_stream(
    token: Any,
    parts: Iterator[Part],
    *,
    invalid_serials: list[str],
    several: bool,
    context: AuditContext,
) -> Iterator[bytes]:
    """The keys of ``parts`` (a search: one part; serials: HEAD_DEVICES of them, then the rest,
    ``several``) as one JSON document. Unwrap the first devices (a failing key stops here,
    before anything is disclosed), audit the first part naming the token, and return the
    document's chunks; each later part is found and audited only when the stream reaches it,
    so the first keys leave before the last serials are looked up."""
    first = next(parts)
    ids = first[0]
    head_ids = ids[:HEAD_DEVICES]
    head = list(access.plain_keys(head_ids)) if head_ids else []
    if ids:
        _record(token, ids, 1 if several else None, context)
    return _chunks(token, head, first, parts, invalid_serials=invalid_serials, context=context)
