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
