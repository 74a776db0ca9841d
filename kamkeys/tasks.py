"""Thin Celery tasks: take an id, call the outbox."""

from __future__ import annotations

from celery import shared_task

from kamkeys import outbox


@shared_task(name="kamkeys.tasks.send_outbound_email", ignore_result=True)
def send_outbound_email(email_id: int) -> bool:
    return outbox.deliver(email_id)


@shared_task(name="kamkeys.tasks.resend_pending_email", ignore_result=True)
def resend_pending_email() -> int:
    return outbox.resend_due()


@shared_task(name="kamkeys.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> str:
    """Run by a worker every KAMKEYS_HEARTBEAT_SECONDS (beat): /healthz shows how long ago."""
    from kamkeys.health import record_heartbeat

    return record_heartbeat()
