"""Email end to end with the real services: PostgreSQL, Redis as broker, a Celery worker
subprocess and an aiosmtpd SMTP server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, transaction

from kamkeys import emails
from kamkeys.models import OutboundEmail

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


class Sink:
    """Collects every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def wait_for(self, reference: str, timeout: float = 40) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if reference in text_of(m)]
            if found:
                time.sleep(0.5)  # anything sent twice would arrive now
                return [m for m in self.messages if reference in text_of(m)]
            time.sleep(0.2)
        return []


def text_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        p.get_payload(decode=True).decode(errors="replace")
        for p in parts
        if p.get_content_type() == "text/plain"
    )


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def service_env(smtp_port: int, **overrides: str) -> dict[str, str]:
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.update(overrides)
    return env


@pytest.fixture
def celery_worker(postgres, redis_url, smtp_sink, tmp_path) -> Iterator[subprocess.Popen]:  # noqa: ANN001
    _, port = smtp_sink
    logfile = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kamkeys",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--logfile",
            str(logfile),
            "--hostname",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=service_env(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if logfile.exists() and "ready." in logfile.read_text():
            break
        if process.poll() is not None:
            pytest.fail(f"worker exited: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the Celery worker did not become ready in 60 s")
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def real_broker() -> Iterator[None]:
    """Tasks go to Redis instead of running in-process."""
    from kamkeys.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def test_worker_sends_outbox_email_to_smtp_server(celery_worker, smtp_sink, real_broker):
    sink, _ = smtp_sink
    with transaction.atomic():
        email = emails.send_test_email("ops@utility.example", "integration-a")
    received = sink.wait_for("integration-a")
    assert len(received) == 1
    assert received[0]["To"] == "ops@utility.example"
    assert "Test email" in received[0]["Subject"]
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


def test_email_written_while_broker_is_down_arrives_once_resend_runs(
    celery_worker, smtp_sink, real_broker
):
    sink, port = smtp_sink
    # Another process writes the email while its broker is unreachable.
    writer = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "send_test_email",
            "late@utility.example",
            "--reference",
            "integration-b",
        ],
        cwd=ROOT,
        env=service_env(port, REDIS_URL="redis://127.0.0.1:9/0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert writer.returncode == 0, writer.stderr
    email = OutboundEmail.objects.get(to="late@utility.example")
    assert email.status == OutboundEmail.Status.PENDING
    assert sink.wait_for("integration-b", timeout=3) == []

    # The periodic re-send, through the reachable broker, to the worker.
    from kamkeys.tasks import resend_pending_email

    resend_pending_email.delay()
    received = sink.wait_for("integration-b")
    assert len(received) == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
