"""``column IN (many values)`` as one SQL parameter.

On PostgreSQL one array literal (``= ANY(%s::bigint[])``) instead of one placeholder per value:
psycopg dumps each parameter separately (milliseconds for a 500-row page), and 100,000 values
would be 100,000 placeholders. SQLite gets the values as one JSON array (``json_each``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL


def _text_element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable[int] | Iterable[str], sql_type: str = "bigint") -> str:
    """A PostgreSQL array literal of integers (``int()``-ed) or of quoted text."""
    if sql_type == "text":
        return "{" + ",".join(_text_element(str(v)) for v in values) + "}"
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def column_in(
    column: str, values: list[int] | list[str], sql_type: Literal["bigint", "text"] = "bigint"
) -> RawSQL:
    """``column IN (values)`` for ``.filter()``; ``column`` is a name from the code, never
    outside text."""
    if connection.vendor == "postgresql":
        return RawSQL(  # noqa: S611 - column and type come from the code, values are a parameter
            f"{column} = ANY(%s::{sql_type}[])",
            (array_literal(values, sql_type),),
            output_field=BooleanField(),
        )
    cleaned = [str(v) if sql_type == "text" else int(v) for v in values]
    return RawSQL(  # noqa: S611 - column comes from the code, values are a parameter
        f"{column} IN (SELECT value FROM json_each(%s))",  # noqa: S608 - a name from the code
        (json.dumps(cleaned),),
        output_field=BooleanField(),
    )
