"""Fault drills: PostgreSQL or Redis gone, then back. A plain 503 page, never a 500, no detail;
the site recovers by itself when the service returns."""

from __future__ import annotations

import shutil

import pytest
from django.db import OperationalError, connection
from django.test import Client, override_settings

from tests.conftest import require_service
from tests.factories import DEFAULT_PASSWORD
from tests.kamkeys.realservices import PrivateRedis, free_port

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
    from django.contrib.sessions.backends.db import SessionStore

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
