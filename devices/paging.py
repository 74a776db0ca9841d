"""Keyset paging for My devices: Next and Previous continue from the last (first) row shown.

A page number in the URL is an OFFSET: PostgreSQL reads and skips every row before it, so page
36,001 of a million devices reads 900,000 index entries. Next and Previous instead carry the
sort key of the page's last (first) row — ``after=`` / ``before=`` — and the next page is
``WHERE (sort key, id) > (that key) ORDER BY sort key, id LIMIT n``, one index probe at any depth.
Devices added or removed meanwhile do not shift it: it continues exactly after the row the user
saw. The page number still travels as a label; a direct jump to a page number pays the offset.

A cursor is the sort key of one row the user was shown (order number, serial, type, id), in
URL-safe base64 JSON. It is no secret and grants nothing: the visibility filter applies as
before, and a cursor that does not parse is ignored (the numbered page is shown).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from devices.models import Device

# Sort fields a cursor can carry: columns of the device table itself (the TRANSFERRED TO sort
# over several owners joins organizations and pages by number).
KEYSET_FIELDS = {"serial": "serial", "order_no": "order_no", "device_type": "device_type"}
MAX_CURSOR_LENGTH = 600


class Cursor(NamedTuple):
    """Where a page starts: after (or before) the row with these sort-key values."""

    before: bool
    values: tuple[Any, ...]


def keyset_ordering(ordering: Sequence[str]) -> list[str] | None:
    """The ordering with ``pk`` as the final tie-breaker (serials repeat across manufacturers),
    or None when the ordering cannot be paged by keyset (a joined column, mixed directions)."""
    fields = [o.lstrip("-") for o in ordering]
    directions = {o.startswith("-") for o in ordering}
    if len(directions) != 1 or any(f not in KEYSET_FIELDS for f in fields):
        return None
    descending = directions.pop()
    return [*ordering, "-pk" if descending else "pk"]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, ordering: Sequence[str], *, before: bool) -> Cursor | None:
    """The cursor in ``token`` if it matches the ordering's shape; None for anything else."""
    if not token or len(token) > MAX_CURSOR_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(values, list) or len(values) != len(ordering):
        return None
    *texts, pk = values
    if not all(isinstance(v, str) and len(v) <= 200 for v in texts):
        return None
    if not isinstance(pk, int) or isinstance(pk, bool) or not 0 < pk < 2**63:
        return None
    return Cursor(before, tuple(values))


def row_key(row: Any, ordering: Sequence[str]) -> list[Any]:
    """The sort-key values of one fetched row (a ``PageRow``), in ``ordering``'s order."""
    return [getattr(row, o.lstrip("-")) for o in ordering]


def keyset_ids(
    queryset: QuerySet[Device], ordering: Sequence[str], cursor: Cursor, limit: int
) -> list[int]:
    """Ids of the ``limit`` rows right after (before) the cursor, in display order.

    Written as a row comparison, ``(serial, id) > (%s, %s)``, which PostgreSQL turns into an
    index range on the (owner, serial) index: no row before the cursor is read."""
    descending = ordering[0].startswith("-")
    forwards = descending == cursor.before  # walk the index towards larger keys?
    table = Device._meta.db_table
    columns = ", ".join(f'"{table}"."{KEYSET_FIELDS.get(o.lstrip("-"), "id")}"' for o in ordering)
    marks = ", ".join(["%s"] * len(ordering))
    operator = ">" if forwards else "<"
    condition = RawSQL(  # noqa: S611 - column names from KEYSET_FIELDS, values as parameters
        f"({columns}) {operator} ({marks})",
        cursor.values,
        output_field=BooleanField(),
    )
    walk = list(ordering) if not cursor.before else [_flip(o) for o in ordering]
    ids = list(queryset.filter(condition).order_by(*walk).values_list("pk", flat=True)[:limit])
    if cursor.before:
        ids.reverse()
    return ids


def _flip(field: str) -> str:
    return field[1:] if field.startswith("-") else f"-{field}"


# A substring search matching at most this many devices is read whole, in order, by the query
# that counts it; its pages are then slices of that list (no query per page).
SMALL_RESULT = 2000


def count_and_first_ids(
    queryset: QuerySet[Device], ordering: Sequence[str], limit: int | None = None
) -> tuple[int, list[int]]:
    """The number of devices in the queryset and the first ``limit`` ids in display order, from
    one pass over the matches (a window count, then a top-N sort): a substring search's count
    and its pages cost one trigram scan, not two. PostgreSQL only (the caller sets the plan)."""
    from django.db import connection

    limit = SMALL_RESULT if limit is None else limit
    fields = [o.lstrip("-") for o in ordering if o.lstrip("-") != "pk"]
    inner = queryset.order_by().values_list("pk", *fields)
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # e.g. a TYPE search that names no type: nothing to count
        return 0, []
    # The subquery's columns are renamed positionally (m0 = pk, m1 ...): no reliance on the
    # aliases the ORM happens to write.
    names = ["pk", *fields]
    order = ", ".join(
        f"m{names.index(o.lstrip('-'))}{' DESC' if o.startswith('-') else ''}" for o in ordering
    )
    aliases = ", ".join(f"m{i}" for i in range(len(names)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m0, count(*) OVER () FROM ({sql}) AS matches ({aliases}) "  # noqa: S608
            f"ORDER BY {order} LIMIT {int(limit)}",
            params,
        )
        rows = cursor.fetchall()
    return (rows[0][1] if rows else 0), [row[0] for row in rows]


def slice_after(ids: list[int], cursor: Cursor, limit: int) -> list[int] | None:
    """The page after (before) the cursor's device in a result held whole; None when that
    device is no longer in it."""
    pk = cursor.values[-1]
    try:
        at = ids.index(pk)
    except ValueError:
        return None
    if cursor.before:
        return ids[max(0, at - limit) : at]
    return ids[at + 1 : at + 1 + limit]
