"""Fault drills: PostgreSQL or Redis gone, then back. A plain 503 page, never a 500, no detail;
the site recovers by itself when the service returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.db import OperationalError, connection
from django.test import Client, override_settings

from tests.conftest import require_service
from tests.factories import DEFAULT_PASSWORD
from tests.kamkeys.realservices import ROOT, PrivateRedis, free_port

LOGIN = "/accounts/login/"


def assert_plain_503(response) -> None:  # noqa: ANN001
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "temporarily unavailable" in page
    for detail in ("Traceback", "OperationalError", "ConnectionError", "127.0.0.1", "redis"):
        assert detail not in page


def log_in(client: Client, email: str):  # noqa: ANN201
    return client.post(LOGIN, {"login": email, "password": DEFAULT_PASSWORD})


@pytest.fixture
def private_redis(tmp_path):  # noqa: ANN001, ANN201
    require_service(shutil.which("redis-server") is not None, "needs the redis-server binary")
    redis = PrivateRedis(tmp_path)
    redis.start()
    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis.url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
    with override_settings(REDIS_URL=redis.url, CACHES={"default": cache}):
        yield redis
    redis.stop()


@pytest.mark.django_db
def test_login_with_redis_stopped_is_a_503_page_and_works_again_when_redis_returns(
    private_redis, customer
):
    client = Client(raise_request_exception=False)
    assert log_in(client, customer.email).status_code == 302
    client.post("/accounts/logout/")

    private_redis.stop()
    assert_plain_503(log_in(client, customer.email))
    assert Client().get("/healthz").status_code == 503
    assert "_auth_user_id" not in client.session

    private_redis.start()
    assert log_in(client, customer.email).status_code == 302
    assert Client().get("/healthz").status_code == 200


@pytest.mark.django_db
def test_a_database_error_in_any_middleware_is_a_503_page_not_a_500(monkeypatch, customer):
    """Sessions are read by a middleware, before any view: the page is still a plain 503."""
    from importlib import import_module

    from django.conf import settings

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore  # noqa: N806 - a class

    client = Client(raise_request_exception=False)
    assert log_in(client, customer.email).status_code == 302

    def unreachable(self):  # noqa: ANN001, ANN202
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(SessionStore, "load", unreachable)
    assert_plain_503(client.get("/devices/"))


@pytest.mark.django_db
def test_a_bug_is_still_a_500_not_a_503(rf):
    """Only an unreachable service is "try again later"; a bug must not hide behind it."""
    from kamkeys.views import server_error

    try:
        raise ValueError("a bug, not an outage")
    except ValueError:
        response = server_error(rf.get("/"))
    assert response.status_code == 500


@pytest.mark.django_db(transaction=True)
def test_postgresql_unreachable_is_a_503_page_and_the_site_recovers(postgres, customer):
    client = Client(raise_request_exception=False)
    assert log_in(client, customer.email).status_code == 302
    assert client.get("/devices/").status_code == 200

    settings_dict = connection.settings_dict
    port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = str(free_port())  # nothing listens there: PostgreSQL is "down"
    try:
        assert_plain_503(client.get("/devices/"))
        health = Client().get("/healthz")
        assert health.status_code == 503 and health.json()["database"] == "error"
    finally:
        connection.close()
        settings_dict["PORT"] = port

    assert client.get("/devices/").status_code == 200
    assert Client().get("/healthz").json()["database"] == "ok"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_gunicorn_reconnects_by_itself_after_postgresql_drops_its_connections(
    postgres, redis_url, tmp_path
):
    """Like a PostgreSQL restart: every server-side connection is killed. The next request
    notices (CONN_HEALTH_CHECKS) and reconnects; no 500, no restart of the web process."""
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": redis_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "1",  # one thread: one kept-alive connection, the one killed
        "HOME": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"]
        + ["kamkeys.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
            time.sleep(0.3)
        assert get(base + LOGIN)[0] == 200

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1

        status, body = get(base + LOGIN)
        assert status == 200, body[:500]
        assert json.loads(get(base + "/healthz")[1])["database"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
