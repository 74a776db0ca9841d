"""Fault drills for email against the real services: nothing lost, nothing sent twice."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from django.db import transaction

from kamkeys import emails
from kamkeys.models import OutboundEmail
from kamkeys.tasks import resend_pending_email
from tests.conftest import require_service
from tests.kamkeys.realservices import ROOT, Beat, PrivateRedis, Worker, service_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def wait_until(condition, timeout: float = 40) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_smtp_refusing_is_retried_with_backoff_and_delivered_later(
    start_worker, smtp_sink, real_broker, admin_client
):
    sink, _ = smtp_sink
    sink.refuse_first = 2
    start_worker(KAMKEYS_OUTBOX_BACKOFF_SECONDS="1")
    with transaction.atomic():
        email = emails.send_test_email("retry@utility.example", "drill-refused")

    assert wait_until(lambda: OutboundEmail.objects.get(pk=email.pk).attempts >= 1)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert "451" in email.last_error
    # The state is visible to staff in the admin.
    page = admin_client.get("/admin/kamkeys/outboundemail/?status__exact=failed")
    assert b"retry@utility.example" in page.content

    # Beat's periodic re-send, until the server accepts.
    def resend_and_check() -> bool:
        resend_pending_email.delay()
        time.sleep(1.2)
        return OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT

    assert wait_until(resend_and_check, timeout=60)
    email.refresh_from_db()
    assert email.attempts == 3
    assert len(sink.wait_for("drill-refused")) == 1


def test_worker_killed_mid_send_loses_nothing_and_sends_once(start_worker, smtp_sink, real_broker):
    sink, _ = smtp_sink
    sink.stall_first_rcpt_seconds = 6
    first = start_worker(KAMKEYS_OUTBOX_CLAIM_SECONDS="3")
    with transaction.atomic():
        email = emails.send_test_email("killed@utility.example", "drill-killed")

    # The first worker has claimed the row and is talking to the SMTP server: kill it there.
    assert wait_until(lambda: sink.stalled, timeout=30)
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENDING
    first.kill()

    start_worker(KAMKEYS_OUTBOX_CLAIM_SECONDS="3")

    def resend_and_check() -> bool:
        resend_pending_email.delay()
        time.sleep(1.5)
        return OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT

    assert wait_until(resend_and_check, timeout=60)
    assert len(sink.wait_for("drill-killed")) == 1


@pytest.fixture
def private_redis(tmp_path):  # noqa: ANN001, ANN201
    require_service(shutil.which("redis-server") is not None, "needs the redis-server binary")
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


def test_invitation_written_while_redis_is_down_arrives_after_redis_returns(
    postgres, smtp_sink, private_redis, tmp_path, org_x, super_user_x, devices_x
):
    sink, port = smtp_sink
    env = service_env(
        port,
        REDIS_URL=private_redis.url,
        KAMKEYS_OUTBOX_RESEND_EVERY_SECONDS="2",
        KAMKEYS_CACHE_PREFIX=f"drill{port}",
    )
    worker = Worker(env, tmp_path / "worker.log")
    beat = Beat(env, tmp_path)
    try:
        private_redis.stop()
        # A distributor invites a new customer while the broker is down.
        snippet = (
            "from accounts.models import User; from devices.models import Device; "
            "from readrights.services import assign_read_rights; "
            "from audit.context import AuditContext; "
            f"su = User.objects.get(pk={super_user_x.pk}); "
            f"assign_read_rights(devices_qs=Device.objects.filter(owner_id={org_x.pk}), "
            "emails_in=['brand.new@utility.example'], context=AuditContext.command(su))"
        )
        writer = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", snippet],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert writer.returncode == 0, writer.stderr[-2000:]
        email = OutboundEmail.objects.get(to="brand.new@utility.example")
        assert email.status == OutboundEmail.Status.PENDING
        time.sleep(3)
        assert not [m for m in sink.messages if m["To"] == "brand.new@utility.example"]

        private_redis.start()  # the broker returns; beat's re-send reaches the worker

        def arrived() -> bool:
            return any(m["To"] == "brand.new@utility.example" for m in sink.messages)

        assert wait_until(arrived, timeout=90)
        time.sleep(3)  # a duplicate would arrive now
        assert len([m for m in sink.messages if m["To"] == "brand.new@utility.example"]) == 1
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.SENT
    finally:
        beat.stop()
        worker.stop()
