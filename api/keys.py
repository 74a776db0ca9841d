"""Keys as a streamed JSON document: the download's key stream (keyfiles.keystream, through
api.access), written as JSON piece by piece in constant memory, audited before the first byte.
The encrypted ZIP and KEM files are the web download's own (keyfiles.downloads)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from operator import itemgetter
from typing import Any

from api import access
from api.devicesets import DeviceSet
from audit import services as audit
from audit.context import AuditContext
from audit.models import Action

HEAD_DEVICES = 1000  # unwrapped before the disclosure is audited and the response starts
FLUSH_CHARS = 1 << 16
# (JSON member, device column): the members but serial, order_no and keys, in document order.
_SHARED = (
    ("manufacturer", "manufacturer"),
    ("kind", "kind"),
    ("type", "device_type"),
    ("type_no", "type_no"),
    ("config_no", "config_no"),
    ("consumption_type", "consumption_type"),
    ("production_year", "production_year"),
)


def audit_detail(token: Any) -> dict[str, Any]:
    """What every API disclosure event says of its channel: the token's id and name."""
    return {"token_id": token.pk, "token_name": token.name}


@lru_cache(maxsize=4096)
def _shared_members(values: tuple[Any, ...]) -> str:
    """The members devices of one type share, encoded once (types repeat from row to row)."""
    return ", ".join(
        f"{json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}"
        for (name, _column), value in zip(_SHARED, values, strict=True)
    )


def _string(value: str) -> str:
    """A JSON string; letters and digits alone (serials, most order numbers) need no escaping."""
    return f'"{value}"' if value.isalnum() and value.isascii() else json.dumps(value)


_shared_values = itemgetter(*(column for _name, column in _SHARED))


@lru_cache(maxsize=256)
def _key_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _device_json(device: dict[str, Any], keys: dict[str, bytes]) -> str:
    shared = _shared_members(_shared_values(device))
    key_members = ", ".join(
        [f'{_key_name(name)}: "{key.hex().upper()}"' for name, key in keys.items()]
    )
    return (
        f'{{"serial": {_string(device["serial"])}, {shared}, '
        f'"order_no": {_string(device["order_no"])}, "keys": {{{key_members}}}}}'
    )


def _chunks(
    head: list[tuple[dict[str, Any], dict[str, bytes]]],
    rest: Iterable[tuple[dict[str, Any], dict[str, bytes]]],
    preamble: str,
) -> Iterator[bytes]:
    parts = [preamble]
    size = len(preamble)
    first = True
    for device, keys in itertools.chain(head, rest):
        piece = ("" if first else ",") + "\n " + _device_json(device, keys)
        first = False
        parts.append(piece)
        size += len(piece)
        if size >= FLUSH_CHARS:
            yield "".join(parts).encode("utf-8")
            parts.clear()
            size = 0
    parts.append("\n]}\n")
    yield "".join(parts).encode("utf-8")


def json_stream(token: Any, device_set: DeviceSet, *, context: AuditContext) -> Iterator[bytes]:
    """Unwrap the first devices (a failing key stops here, before anything is disclosed),
    audit the disclosure naming the token, and return the document's chunks."""
    ids = device_set.sorted_ids()
    head_ids, rest_ids = ids[:HEAD_DEVICES], ids[HEAD_DEVICES:]
    head = list(access.plain_keys(device_set.devices, head_ids)) if head_ids else []
    if ids:
        audit.record(
            Action.DOWNLOAD,
            context=context,
            object_type="device",
            object_ids=ids,
            count=len(ids),
            detail={**audit_detail(token), "format": "json"},
        )
    preamble = (
        '{"format": "json", '
        f'"count": {len(ids)}, '
        f'"unknown_serials": {json.dumps(device_set.unknown_serials)}, '
        f'"invalid_serials": {json.dumps(device_set.invalid_serials, ensure_ascii=False)}, '
        '"devices": ['
    )
    rest: Iterable[tuple[dict[str, Any], dict[str, bytes]]] = (
        access.plain_keys(device_set.devices, rest_ids) if rest_ids else ()
    )
    return _chunks(head, rest, preamble)
