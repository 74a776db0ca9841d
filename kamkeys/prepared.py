"""ORM queries compiled to SQL once per process, then run with each request's values.

Building a query through the ORM (cloning querysets, resolving lookups, compiling) costs far more
CPU than PostgreSQL needs to answer the small queries every page asks (a third of a My devices
page went to it). A ``PreparedQuery`` keeps the rule where it is written, in the ORM: it calls
the builder twice with two sets of made-up values, and keeps the SQL and where each value went
among the parameters; later runs only execute that SQL with the real values in those places.

The builder must be a pure function of its keyword arguments (ints, aware datetimes, strings,
lists of ints or of strings) that does not branch on them. A list's length is part of the
query's shape (``IN (%s, %s)``), so each length gets its own compiled SQL, unless the list is
named in ``arrays``: sent as one array literal (``kamkeys.sqlarrays.column_in``), its length is
not.
Every other parameter must be the same in both compilations (a constant of the query): a value
the ORM transformed, wrote into the SQL text, or that the builder took from elsewhere (the
clock) makes preparation fail and log it, and that query then runs through the ORM every time.
Only on PostgreSQL: elsewhere the query is built through the ORM on every call.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from kamkeys.sqlarrays import array_literal

logger = logging.getLogger(__name__)

Built = QuerySet[Any] | tuple[str, Sequence[Any]]
# Where a parameter comes from: (name, None, wrap) the value itself, (name, i, wrap) element i of
# a list, (name, "array", None) a list as one array literal (kamkeys.sqlarrays), or
# ("", constant, None). ``wrap``: the type the ORM wrapped the value in (psycopg's Int8), or None.
Slot = tuple[str, Any, type | None]


class PreparationError(RuntimeError):
    """The builder's SQL does not depend on its values the way a prepared query needs."""


def _sql_of(built: Built) -> tuple[str, tuple[Any, ...]]:
    if isinstance(built, QuerySet):
        sql, query_params = built.query.sql_with_params()
        return sql, tuple(query_params)
    sql, params = built
    return sql, tuple(params)


# At most this many shapes per query are compiled; any other runs through the ORM.
MAX_SHAPES = 32
# Every prepared query of the process (module-level constants), for the tests.
EVERY: list[PreparedQuery] = []


def _samples(values: dict[str, Any], round_: int, arrays: frozenset[str]) -> dict[str, Any]:
    """Made-up values of the same shape that no real query or constant would carry."""
    counter = itertools.count(1)
    out: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        if isinstance(value, bool):
            raise PreparationError(f"{name}: booleans cannot be told apart from constants")
        if isinstance(value, int):
            out[name] = -(10**15) * round_ - next(counter)
        elif isinstance(value, datetime):
            out[name] = datetime(1901, round_, 1, tzinfo=UTC) + timedelta(
                microseconds=next(counter)
            )
        elif isinstance(value, str):
            out[name] = f"~prepared-{round_}-{next(counter)}~"
        elif isinstance(value, list | tuple):
            length = 2 if name in arrays else len(value)
            if value and isinstance(value[0], str) and name not in arrays:
                out[name] = [f"~prepared-{round_}-{next(counter)}~" for _ in range(length)]
            else:
                out[name] = [-(10**15) * round_ - next(counter) for _ in range(length)]
        else:
            raise PreparationError(f"{name}: {type(value).__name__} values are not supported")
    return out


def _same(param: Any, sample: Any) -> bool:
    """The parameter is this sample, maybe wrapped by the driver's adapter (psycopg's ``Int8``
    for a bigint column is an ``int``)."""
    return isinstance(param, type(sample)) and param == sample


def _slot(
    p1: Any, p2: Any, one: dict[str, Any], two: dict[str, Any], arrays: frozenset[str]
) -> Slot:
    for name, v1 in one.items():
        v2 = two[name]
        if name in arrays:
            if p1 == array_literal(v1) and p2 == array_literal(v2):
                return (name, "array", None)
        elif isinstance(v1, list):
            for i, (e1, e2) in enumerate(zip(v1, v2, strict=True)):
                if _same(p1, e1) and _same(p2, e2):
                    return (name, i, _wrapper(p1, e1))
        elif _same(p1, v1) and _same(p2, v2):
            return (name, None, _wrapper(p1, v1))
    if type(p1) is type(p2) and p1 == p2:
        return ("", p1, None)
    raise PreparationError(f"a parameter changed with the values but is none of them: {p1!r}")


def _wrapper(param: Any, sample: Any) -> type | None:
    return None if type(param) is type(sample) else type(param)


def _prepare(
    build: Callable[..., Built], values: dict[str, Any], arrays: frozenset[str]
) -> tuple[str, list[Slot]]:
    one, two = _samples(values, 1, arrays), _samples(values, 2, arrays)
    sql, params1 = _sql_of(build(**one))
    sql2, params2 = _sql_of(build(**two))
    if sql != sql2 or len(params1) != len(params2):
        raise PreparationError("the SQL text changed with the values")
    slots = [_slot(p1, p2, one, two, arrays) for p1, p2 in zip(params1, params2, strict=True)]
    used = {slot[0] for slot in slots if slot[0]}
    if used != set(values):
        raise PreparationError(f"values not found among the parameters: {set(values) - used}")
    return sql, slots


class PreparedQuery:
    """``PreparedQuery(build).run(**values)``: the rows of ``build(**values)``, compiled once
    per process (and per length of each list value) on PostgreSQL."""

    def __init__(self, build: Callable[..., Built], *, arrays: tuple[str, ...] = ()) -> None:
        self.build = build
        self.arrays = frozenset(arrays)
        self._compiled: dict[tuple[Any, ...], tuple[str, list[Slot]] | None] = {}
        EVERY.append(self)

    @property
    def unprepared(self) -> int:
        """How many of the shapes met so far could not be compiled (they run through the ORM)."""
        return sum(1 for compiled in self._compiled.values() if compiled is None)

    def _shape(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """What the SQL text depends on: the values' types and the lengths of lists."""
        shape: list[Any] = []
        for name, value in sorted(values.items()):
            if name in self.arrays:
                shape.append((name, "array"))
            elif isinstance(value, list | tuple):
                shape.append((name, len(value), type(value[0]).__name__ if value else ""))
            else:
                shape.append((name, type(value).__name__))
        return tuple(shape)

    def sql_with_params(self, **values: Any) -> tuple[str, tuple[Any, ...]]:
        """The SQL and parameters the ORM would run for these values."""
        if connection.vendor != "postgresql":
            return _sql_of(self.build(**values))
        shape = self._shape(values)
        if shape not in self._compiled:
            if len(self._compiled) >= MAX_SHAPES:
                return _sql_of(self.build(**values))
            try:
                self._compiled[shape] = _prepare(self.build, values, self.arrays)
            except Exception:  # noqa: BLE001 - a builder that refuses made-up values, too
                logger.exception("query of %s not prepared", self.build.__qualname__)
                self._compiled[shape] = None
        compiled = self._compiled[shape]
        if compiled is None:
            return _sql_of(self.build(**values))
        sql, slots = compiled
        params = []
        for name, where, wrap in slots:
            if not name:
                value = where
            elif where is None:
                value = values[name]
            elif where == "array":
                value = array_literal(values[name])
            else:
                value = values[name][where]
            params.append(value if wrap is None else wrap(value))
        return sql, tuple(params)

    def run(self, **values: Any) -> list[tuple[Any, ...]]:
        """The rows, as the database returns them (no field converters)."""
        sql, params = self.sql_with_params(**values)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
