from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.kamkeys.realservices import Sink, Worker, free_port, service_env


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def start_worker(
    postgres: None, shared_broker: str, smtp_sink: tuple[Sink, int], tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """start_worker(**env) → a ready Celery worker on the real broker, the test's database and
    the SMTP sink; stopped at the end of the test."""
    _, port = smtp_sink
    workers: list[Worker] = []

    def start(**overrides: str) -> Worker:
        worker = Worker(service_env(port, **overrides), tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def real_broker(shared_broker: str) -> Iterator[None]:
    """Tasks from this test process go to Redis instead of running in-process."""
    from kamkeys.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


# --- production settings for subprocess tests (tests/kamkeys/test_settings.py runs them) -------
GOOD_SECRET = "q7!Vx" * 12


@pytest.fixture
def kek_file(tmp_path: Path) -> str:
    path = tmp_path / "prod.kek"
    path.write_text("1:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def production_env(kek_file: str, tmp_path: Path) -> dict[str, str]:
    return {
        "KAMKEYS_ENV": "production",
        "SECRET_KEY": GOOD_SECRET,
        "ALLOWED_HOSTS": "keys.example.com",
        "DATABASE_URL": "postgres://kamkeys@127.0.0.1:5432/kamkeys",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "KAMKEYS_KEK_FILE": kek_file,
        "EMAIL_HOST": "127.0.0.1",
        "KAMKEYS_SITE_URL": "https://keys.example.com",
        "KAMKEYS_SKIP_REDIS_CHECK": "true",
        "KAMKEYS_VAR_DIR": str(tmp_path / "var"),
    }
