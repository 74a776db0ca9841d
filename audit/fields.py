"""The audit event's id list, kept as the JSON text it was written as."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Lookup


class WrittenJSONField(models.JSONField):
    """A JSONField stored in PostgreSQL's ``json`` type (the text, checked) instead of ``jsonb``
    (parsed into a binary tree). An audit event is written once, before a download's first
    byte, and read rarely: for a download's 100,000 device ids, building the ``jsonb`` took
    ~45 ms of that wait, checking the ``json`` text ~5 ms. docs/database.md, Column compression.

    Reads are unchanged, and so are filters: ``json`` has no operators, so every lookup
    (``object_ids__contains=[device_id]``, ``object_ids=[...]``, ``__in`` ...) compares the
    column cast to ``jsonb``, as a JSONField's column would be. SQLite stores text either way.
    """

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        """What an INSERT writes: typed ``json``, so PostgreSQL only checks the text. (Lookups
        go through ``get_db_prep_value`` and keep Django's ``jsonb``.)"""
        prepared = super().get_db_prep_save(value, connection)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Json, Jsonb

            if isinstance(prepared, Jsonb):
                return Json(prepared.obj, dumps=prepared.dumps)
        return prepared

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg parses the json type itself (Django turns that off for jsonb only).
        if value is None or not isinstance(value, str | bytes):
            return value
        return super().from_db_value(value, expression, connection)


def _on_jsonb(lookup: type[Lookup]) -> type[Lookup]:
    """The lookup with the column read as ``jsonb`` on PostgreSQL."""

    class OnJsonb(lookup):  # type: ignore[valid-type, misc]
        def process_lhs(self, compiler: Any, connection: Any, lhs: Any = None) -> Any:
            sql, params = super().process_lhs(compiler, connection, lhs)
            if connection.vendor == "postgresql":
                sql = f"({sql})::jsonb"
            return sql, params

    OnJsonb.__name__ = OnJsonb.__qualname__ = f"{lookup.__name__}OnJsonb"
    return OnJsonb


for _name, _lookup in models.JSONField.get_class_lookups().items():  # type: ignore[attr-defined]
    WrittenJSONField.register_lookup(_on_jsonb(_lookup), _name)
