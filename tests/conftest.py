"""Shared fixtures: personas, real-service guards, and a clean cache per test; and how a run is
ordered and spread over pytest-xdist workers.

Tests that need a real service (PostgreSQL, Redis, a Celery worker, SMTP, Chromium) ask for it
through ``require_service``: locally they skip and say why; under CI=true a skip is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

from accounts.models import Organization, User
from tests.factories import (
    DeviceFactory,
    OrganizationFactory,
    UserFactory,
    login,
    make_member,
    make_staff,
    make_super_user,
)
from tests.hardening.figures import FIGURES, add_figure, figure_lines

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Generated-input tests (Hypothesis, marker "generated") must be repeatable, and the default run
# quick. One profile is loaded per run:
# - "ci" (chosen when CI=true) draws the same inputs on every run (derandomize): CI never turns
#   red by chance, and a failure it finds fails every run until fixed. It keeps no example
#   database: a clean clone has none, so what must replay is pinned in the test with @example
#   (tests/hardening/test_generated_bad_input.py); pinned examples run under every profile.
# - "dev" (the default elsewhere) explores new inputs on each run, fewer per test, and keeps
#   every failure in the git-ignored .hypothesis/ database, which replays it first on the next
#   run until it passes.
# - "deep" explores like "dev", with 1,000 inputs per generated-input test:
#   HYPOTHESIS_PROFILE=deep bash scripts/test -m generated
# HYPOTHESIS_PROFILE=dev|ci|deep overrides the choice.
_EXAMPLE_DATABASE = DirectoryBasedExampleDatabase(
    Path(__file__).resolve().parent.parent / ".hypothesis" / "examples"
)
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("dev", database=_EXAMPLE_DATABASE, print_blob=True)
hypothesis_settings.register_profile(
    "deep", database=_EXAMPLE_DATABASE, print_blob=True, max_examples=1000
)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev")
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)

# Inputs per test of tests/hardening/test_generated_bad_input.py (each is a full request).
GENERATED_INPUT_EXAMPLES = {"ci": 200, "dev": 40, "deep": 1000}


def generated_input_examples() -> int:
    """How many inputs each generated bad-input test draws under the loaded profile."""
    return GENERATED_INPUT_EXAMPLES.get(HYPOTHESIS_PROFILE, GENERATED_INPUT_EXAMPLES["ci"])


# pytest-randomly shuffles the order of modules and tests and reseeds `random` (factory_boy,
# Faker) before every test, so a test's inputs do not depend on what ran before it on its
# worker. The seed is printed in the header ("Using --randomly-seed=N"); -n 0 --randomly-seed=N
# repeats that order exactly (under xdist: the same tests, spread as the workers come free).
# Elsewhere each run draws a new seed (order dependencies come to light); under CI=true it is
# this fixed one, so CI runs the same order every time.
CI_RANDOMLY_SEED = 1407


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests first (after pytest-randomly's shuffle, which stays the order within each
    part): xdist hands tests out in this order as workers come free, and a test of several
    seconds drawn last leaves the other worker idle until it ends."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if (
        IN_CI
        and config.pluginmanager.hasplugin("randomly")
        and config.getoption("randomly_seed", None) == "default"
    ):
        config.option.randomly_seed = CI_RANDOMLY_SEED


# The hardening figures (tests/hardening/figures.py): each xdist worker hands its counts to the
# controller, which prints the sums.
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["hardening_figures"] = {name: list(v) for name, v in FIGURES.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001
    figures = getattr(node, "workeroutput", {}).get("hardening_figures", {})
    for name, (counted, bad) in figures.items():
        add_figure(name, counted, bad)


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if hasattr(terminalreporter.config, "workerinput"):
        return
    lines = figure_lines()
    if lines:
        terminalreporter.section("hardening figures")
        for line in lines:
            terminalreporter.write_line(line)


def require_service(available: bool, why: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres() -> None:
    from django.db import connection

    require_service(
        connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://…"
    )


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require_service(bool(url) and _reachable(url, 6379), "needs Redis: set REDIS_URL=redis://…")
    return url


@pytest.fixture
def shared_broker(redis_url: str) -> Iterator[str]:
    """The machine's Redis as Celery's broker, with this test run's queue empty at the start and
    end of the test: no task of an earlier test, waiting or left unacknowledged by a killed
    worker, reaches this test's worker. (Each pytest-xdist worker has its own queue and cache
    keys, tests/settings.py, so the per-test FLUSHDB that did this before is gone under xdist.)"""
    _purge_broker(redis_url)
    yield redis_url
    _purge_broker(redis_url)


def _purge_broker(url: str) -> None:
    import json

    import redis
    from django.conf import settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(url)
    try:
        # kombu's Redis transport: one list per queue and priority, and the unacknowledged
        # deliveries of every queue in one hash ("unacked") and one sorted set ("unacked_index").
        lists = [queue.encode(), *client.scan_iter(match=f"{queue}\x06\x16*", count=1000)]
        unacked = [
            tag
            for tag, payload in client.hgetall("unacked").items()
            if json.loads(payload)[2] == queue
        ]
        client.delete(*lists)
        if unacked:
            client.hdel("unacked", *unacked)
            client.zrem("unacked_index", *unacked)
    finally:
        client.close()


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, live_server):  # noqa: ANN001, ANN201
    """pytest-django's live server, started after the test database is made, so that it stops
    before the database is dropped. pytest-django's own fixture does not ask for the database,
    so it was set up first and stopped last, after the drop: a CI run now and then warned that
    the database "is being accessed by other users", with the live server's thread still
    alive and a session whose last query came from a request it had served."""
    return live_server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require_service(os.path.exists(path), "needs Debian's chromium at /usr/bin/chromium")
    return path


@pytest.fixture(autouse=True)
def _clean_cache_and_eager_tasks() -> Iterator[None]:
    """Rate limits live in the cache: each test starts clean. Tasks run in-process (the test
    settings, tests/settings.py); a test that drives a real worker switches eager mode off for
    itself (tests/kamkeys/conftest.py's real_broker), and whatever it leaves is put back."""
    from django.conf import settings

    from kamkeys.celery import app

    cache.clear()
    yield
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language_between_tests() -> Iterator[None]:
    """A request through LocaleMiddleware leaves its language active in the thread (Danish, say);
    each test starts in the default language, as each real request starts with its own."""
    from django.utils import translation

    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture
def production_password_hashers(settings) -> None:  # noqa: ANN001
    """The production hasher list of kamkeys.settings (Argon2 at its real cost), for the tests
    that check what production stores; every other test uses the cheap one of tests/settings.py."""
    from kamkeys import settings as production

    settings.PASSWORD_HASHERS = production.PASSWORD_HASHERS


# --- personas ---------------------------------------------------------------------------------


@pytest.fixture
def org_x(db) -> Organization:  # noqa: ANN001
    return OrganizationFactory(name="Distributor X A/S", kind=Organization.Kind.DISTRIBUTOR)


@pytest.fixture
def org_y(db) -> Organization:  # noqa: ANN001
    return OrganizationFactory(name="Distributor Y GmbH", kind=Organization.Kind.DISTRIBUTOR)


@pytest.fixture
def customer_org(db) -> Organization:  # noqa: ANN001
    return OrganizationFactory(name="Aarhus Water Utility", kind=Organization.Kind.CUSTOMER)


@pytest.fixture
def super_user_x(org_x: Organization) -> User:
    return make_super_user(org_x, email="super.x@distributor-x.example", name="Xenia Super")


@pytest.fixture
def super_user_y(org_y: Organization) -> User:
    return make_super_user(org_y, email="super.y@distributor-y.example", name="Yannick Super")


@pytest.fixture
def customer(customer_org: Organization) -> User:
    return make_member(customer_org, email="customer@utility.example", name="Carla Customer")


@pytest.fixture
def outsider(db) -> User:  # noqa: ANN001
    return UserFactory(email="outsider@elsewhere.example", name="Otto Outsider")


@pytest.fixture
def staff_user(db) -> User:  # noqa: ANN001
    return make_staff(email="staff@manufacturer.example")


@pytest.fixture
def admin_user(db) -> User:  # noqa: ANN001
    """pytest-django's admin_user (and admin_client), with the TOTP every staff account needs."""
    return make_staff(email="admin@manufacturer.example")


@pytest.fixture
def devices_x(org_x: Organization) -> list:
    return DeviceFactory.create_batch(5, owner=org_x)


@pytest.fixture
def devices_y(org_y: Organization) -> list:
    return DeviceFactory.create_batch(3, owner=org_y, device_type="flowIQ 2200")


@pytest.fixture
def client_for():  # noqa: ANN201
    """client_for(user) → a logged-in Django test client with fresh password + MFA records."""

    def make(user: User, *, mfa: bool = True) -> Client:
        return login(Client(), user, mfa=mfa)

    return make
