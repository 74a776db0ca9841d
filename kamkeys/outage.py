"""PostgreSQL or Redis down: a plain 503 page that says "try again shortly", never a 500.

Django turns any exception, raised by a view or by a middleware (sessions, rate limits in the
cache, …), into a call of ``handler500`` while the exception is being handled; that handler
(``kamkeys.views.server_error``) asks :func:`is_outage` and answers with
:func:`unavailable_response`. Nothing is half-written: every write is one transaction, which
the failure rolls back. When the service returns, the next request reconnects by itself
(``CONN_HEALTH_CHECKS`` for the database, a fresh pooled connection for Redis).
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
)
RETRY_AFTER_SECONDS = 30


def is_outage(exc: BaseException | None) -> bool:
    """The exception, or one it was raised from, means a backing service is unreachable."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OUTAGE_ERRORS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def unavailable_response() -> HttpResponse:
    """The 503 page, rendered without the request: no session, user or database needed."""
    response = HttpResponse(render_to_string("errors/503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
