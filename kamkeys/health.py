"""``GET /healthz`` for load balancers, compose and monitoring, and the worker's heartbeat.

The answer::

    {"status": "ok" | "degraded",
     "database": "ok" | "error",
     "redis": "ok" | "error",
     "worker": {"last_heartbeat": "2026-12-02T12:00:00+00:00" | null, "age_seconds": 12 | null}}

200 with ``"status": "ok"`` when the database and Redis answer, else 503 with
``"status": "degraded"``. The worker's heartbeat is information, not a condition: a Celery
worker runs ``kamkeys.tasks.worker_heartbeat`` every ``KAMKEYS_HEARTBEAT_SECONDS`` (30) from
beat and once when it starts; a monitor alerts when ``age_seconds`` grows past a few periods.

The middleware answers before any other (host validation, HTTPS redirect, sessions), so a probe
gets its answer whatever Host header it sends; it never calls ``request.get_host()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

HEARTBEAT_KEY = "kamkeys:worker-heartbeat"
HEALTHZ_PATH = "/healthz"


def record_heartbeat(now: datetime | None = None) -> str:
    """Store "a worker was alive at …" in the cache (Redis), for healthz to report."""
    stamp = (now or datetime.now(UTC)).isoformat()
    cache.set(HEARTBEAT_KEY, stamp, timeout=None)
    return stamp


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any failure means the database cannot serve
        return False
    return True


def redis_ok() -> bool:
    """Redis answers PING. The embedded default has no Redis: its in-process cache is ok."""
    if not settings.REDIS_URL:
        return True
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means Redis cannot serve
        return False


def worker_state(now: datetime | None = None) -> dict[str, Any]:
    try:
        stamp = cache.get(HEARTBEAT_KEY)
        beat = datetime.fromisoformat(stamp) if stamp else None
    except Exception:  # noqa: BLE001 - no cache, no heartbeat to report
        beat = None
    if beat is None:
        return {"last_heartbeat": None, "age_seconds": None}
    age = ((now or datetime.now(UTC)) - beat).total_seconds()
    return {"last_heartbeat": beat.isoformat(), "age_seconds": max(0, round(age))}


def health() -> tuple[dict[str, Any], int]:
    database = database_ok()
    redis_up = redis_ok()
    healthy = database and redis_up
    body = {
        "status": "ok" if healthy else "degraded",
        "database": "ok" if database else "error",
        "redis": "ok" if redis_up else "error",
        "worker": worker_state() if redis_up else {"last_heartbeat": None, "age_seconds": None},
    }
    return body, 200 if healthy else 503


class HealthzMiddleware:
    """First in MIDDLEWARE: ``/healthz`` is answered here, for any Host header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != HEALTHZ_PATH or request.method not in {"GET", "HEAD"}:
            return self.get_response(request)
        body, status = health()
        response = JsonResponse(body, status=status)
        response["Cache-Control"] = "no-store"
        return response
