"""Email end to end with the real services: PostgreSQL, Redis as broker, a Celery worker
subprocess and an aiosmtpd SMTP server on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import transaction

from kamkeys import emails
from kamkeys.models import OutboundEmail
from tests.kamkeys.realservices import ROOT, service_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_worker_sends_outbox_email_to_smtp_server(start_worker, smtp_sink, real_broker):
    sink, _ = smtp_sink
    start_worker()
    with transaction.atomic():
        email = emails.send_test_email("ops@utility.example", "integration-a")
    received = sink.wait_for("integration-a")
    assert len(received) == 1
    assert received[0]["To"] == "ops@utility.example"
    assert "Test email" in received[0]["Subject"]
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


def test_email_written_while_broker_is_down_arrives_once_resend_runs(
    start_worker, smtp_sink, real_broker
):
    sink, port = smtp_sink
    start_worker()
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
