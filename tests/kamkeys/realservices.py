"""The real parts for email tests: an aiosmtpd SMTP server and a Celery worker subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def text_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        p.get_payload(decode=True).decode(errors="replace")
        for p in parts
        if p.get_content_type() == "text/plain"
    )


class Sink:
    """An SMTP server's handler that keeps what it accepts. It can misbehave on purpose:
    refuse the first N messages (451), or stall the first recipient so a test can kill the
    sender mid-send."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse_first = 0
        self.refused = 0
        self.stall_first_rcpt_seconds = 0.0
        self.stalled = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: ANN001, N802
        if self.stall_first_rcpt_seconds and not self.stalled:
            self.stalled = True
            await asyncio.sleep(self.stall_first_rcpt_seconds)
            return "451 4.3.0 Stalled on purpose"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        if self.refused < self.refuse_first:
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def matching(self, reference: str) -> list[Message]:
        return [m for m in self.messages if reference in text_of(m)]

    def wait_for(self, reference: str, timeout: float = 40) -> list[Message]:
        """Messages carrying the reference; waits a little longer so a duplicate would show."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.matching(reference):
                time.sleep(1.0)
                return self.matching(reference)
            time.sleep(0.2)
        return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_env(smtp_port: int, **overrides: str) -> dict[str, str]:
    """The environment of a subprocess that shares this test's database."""
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


class Worker:
    """A real `celery worker` process."""

    def __init__(self, env: dict[str, str], logfile: Path) -> None:
        self.logfile = logfile
        self.process = subprocess.Popen(
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
                f"test-{os.getpid()}-{time.time_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if logfile.exists() and "ready." in logfile.read_text():
                return
            if self.process.poll() is not None:
                pytest.fail(f"worker exited: {self.process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        self.process.kill()
        pytest.fail("the Celery worker did not become ready in 60 s")

    def log_contains(self, text: str) -> bool:
        return self.logfile.exists() and text in self.logfile.read_text()

    def kill(self) -> None:
        """Like a machine losing power: no shutdown, no acknowledgement."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


class PrivateRedis:
    """A Redis server of this test's own, so a drill can stop the broker without touching the
    machine's shared one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


class Beat:
    """A real `celery beat` process."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kamkeys",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(workdir / "beat-schedule"),
                "--pidfile",
                "",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
