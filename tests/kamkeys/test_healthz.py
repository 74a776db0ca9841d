"""/healthz: what a load balancer, docker compose and a monitor read.

Contract: JSON {"status": "ok"|"degraded", "database": "ok"|"error", "redis": "ok"|"error",
"worker": {"last_heartbeat": iso8601|null, "age_seconds": n|null}}; 200 when the database and
Redis answer, else 503; any Host header.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, override_settings

from kamkeys import health
from kamkeys.tasks import worker_heartbeat
from tests.kamkeys.realservices import free_port

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_redis_and_worker_with_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "worker": {"last_heartbeat": None, "age_seconds": None},
    }


@pytest.mark.parametrize("host", ["10.0.0.7:8000", "web", "probe.internal", "[::1]:8000"])
def test_healthz_answers_whatever_the_host_header_is(host, settings):
    settings.ALLOWED_HOSTS = ["keys.example.com"]
    response = Client(HTTP_HOST=host).get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_is_not_redirected_to_https_in_production(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["keys.example.com"]
    assert Client(HTTP_HOST="web:8000").get("/healthz").status_code == 200


def test_only_healthz_bypasses_host_validation(settings):
    settings.ALLOWED_HOSTS = ["keys.example.com"]
    response = Client(HTTP_HOST="evil.example", raise_request_exception=False).get(
        "/accounts/login/"
    )
    assert response.status_code == 400


def test_a_worker_heartbeat_shows_with_its_age(client):
    worker_heartbeat()
    worker = client.get("/healthz").json()["worker"]
    assert datetime.fromisoformat(worker["last_heartbeat"]) > datetime.now(UTC) - timedelta(
        seconds=10
    )
    assert 0 <= worker["age_seconds"] < 10


def test_an_old_heartbeat_shows_its_age_and_does_not_fail_the_check(client):
    health.record_heartbeat(datetime.now(UTC) - timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert 295 <= response.json()["worker"]["age_seconds"] <= 310


def test_beat_schedules_the_heartbeat_every_30_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["worker-heartbeat"]
    assert entry["task"] == "kamkeys.tasks.worker_heartbeat"
    assert entry["schedule"] == timedelta(seconds=30)


def test_database_unreachable_gives_503_and_says_which(client, monkeypatch):
    def broken() -> bool:
        return False

    monkeypatch.setattr(health, "database_ok", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["database"] == "error"
    assert response.json()["redis"] == "ok"


def redis_at(url: str) -> override_settings:
    """Redis (broker check and cache) at ``url`` for the duration of a with-block."""
    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
    return override_settings(REDIS_URL=url, CACHES={"default": cache})


def test_redis_unreachable_gives_503_and_says_which(client):
    started = time.monotonic()
    with redis_at(f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/healthz")
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] == "error" and body["database"] == "ok"
    assert body["worker"] == {"last_heartbeat": None, "age_seconds": None}


@pytest.mark.services
def test_a_running_worker_reports_its_heartbeat(start_worker, client):
    from django.core.cache import cache

    cache.delete(health.HEARTBEAT_KEY)
    start_worker()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        worker = client.get("/healthz").json()["worker"]
        if worker["last_heartbeat"]:
            break
        time.sleep(0.5)
    assert worker["age_seconds"] is not None and worker["age_seconds"] < 30


@pytest.mark.services
def test_beat_keeps_the_heartbeat_fresh(start_worker, client, tmp_path, smtp_sink):
    from django.core.cache import cache

    from tests.kamkeys.realservices import Beat, service_env

    _, port = smtp_sink
    start_worker(KAMKEYS_HEARTBEAT_SECONDS="2")
    cache.delete(health.HEARTBEAT_KEY)  # forget the worker's start-up heartbeat
    beat = Beat(service_env(port, KAMKEYS_HEARTBEAT_SECONDS="2"), tmp_path)
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(seen) < 2:
            stamp = client.get("/healthz").json()["worker"]["last_heartbeat"]
            if stamp:
                seen.add(stamp)
            time.sleep(0.5)
    finally:
        beat.stop()
    assert len(seen) >= 2, "beat did not have the worker write two heartbeats"
