"""The audit event's id list, kept as the JSON text it was written as."""

from __future__ import annotations

from typing import Any

from django.db import models


class WrittenJSONField(models.JSONField):
    """A JSONField stored in PostgreSQL's ``json`` type (the text, checked) instead of ``jsonb``
    (parsed into a binary tree). An audit event is written once, before a download's first
    byte, and read rarely: for a download's 100,000 device ids, building the ``jsonb`` took
    ~45 ms of that wait, checking the ``json`` text ~5 ms. No ``jsonb`` operator or lookup is
    used on such a column; SQLite stores text either way. docs/database.md, Column compression.
    """

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        from psycopg.types.json import Json

        if not prepared:
            value = self.get_prep_value(value)
        return Json(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg parses the json type itself (Django turns that off for jsonb only).
        if value is None or not isinstance(value, str | bytes):
            return value
        return super().from_db_value(value, expression, connection)
