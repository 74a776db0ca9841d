"""The outbox: written with the change, sent after commit, retried, never sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from kamkeys import emails, outbox
from kamkeys.models import OutboundEmail

pytestmark = pytest.mark.django_db


def test_email_is_sent_only_after_the_change_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            email = emails.send_test_email("ops@utility.example", "ref-1")
            assert mail.outbox == []
    assert len(callbacks) == 1
    assert [m.to for m in mail.outbox] == [["ops@utility.example"]]
    assert "ref-1" in mail.outbox[0].body
    assert mail.outbox[0].alternatives[0][1] == "text/html"
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.sent_at is not None


def test_rolled_back_change_sends_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            emails.send_test_email("ops@utility.example", "ref-2")
            raise RuntimeError("the change failed")
    assert OutboundEmail.objects.count() == 0
    assert mail.outbox == []


def test_context_is_sealed_so_links_with_tokens_are_not_stored_readable():
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "TOKEN-abc123"})
    assert b"TOKEN-abc123" not in bytes(email.sealed_context)
    assert outbox.open_context(email.sealed_context) == {
        "reference": "TOKEN-abc123",
        "_language": "en-gb",  # the language it is written in (the recipient's)
    }


def test_a_row_is_sent_once_even_when_two_workers_pick_it_up():
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})
    assert outbox.deliver(email.pk) is True
    assert outbox.deliver(email.pk) is False
    assert len(mail.outbox) == 1


def test_a_claimed_row_is_not_sent_by_a_second_worker():
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})
    assert outbox._claim(email.pk) is True
    assert outbox.deliver(email.pk) is False
    assert mail.outbox == []


def test_smtp_failure_is_retried_with_backoff_and_then_delivered(settings, monkeypatch):
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("SMTP server refused")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    assert outbox.deliver(email.pk) is False
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.attempts == 1
    assert "refused" in email.last_error
    assert email.next_attempt_at > timezone.now() + timedelta(seconds=20)
    # Not due yet: the periodic re-send leaves it alone.
    assert outbox.resend_due() == 0

    monkeypatch.undo()
    OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert outbox.resend_due() == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 2
    assert len(mail.outbox) == 1


def test_gives_up_after_the_maximum_number_of_attempts(settings, monkeypatch):
    settings.KAMKEYS_OUTBOX_MAX_ATTEMPTS = 2
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})
    monkeypatch.setattr(
        "django.core.mail.EmailMultiAlternatives.send",
        lambda self, *a, **k: (_ for _ in ()).throw(OSError("down")),
    )
    outbox.deliver(email.pk)
    OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    outbox.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.GAVE_UP
    assert outbox.due_email_ids() == []


def test_backoff_grows_exponentially_and_is_capped(settings):
    settings.KAMKEYS_OUTBOX_BACKOFF_SECONDS = 30
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert outbox.backoff(50) == timedelta(hours=6)


def test_a_stale_claim_from_a_dead_worker_is_taken_over():
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.SENDING, claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert email.pk in outbox.due_email_ids()
    assert outbox.resend_due() == 1
    assert len(mail.outbox) == 1


def test_broker_outage_at_write_time_leaves_the_email_pending(monkeypatch):
    from kamkeys.tasks import send_outbound_email

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(send_outbound_email, "apply_async", broker_down)
    email = outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "r"})
    outbox.dispatch(email.pk)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING
    monkeypatch.undo()
    assert outbox.resend_due() == 1
    assert len(mail.outbox) == 1


def test_admin_shows_delivery_state_but_not_content(client, staff_user):
    outbox.enqueue("a@b.example", "kamkeys_test_email", {"reference": "SECRET-REF-42"})
    client.force_login(staff_user)
    response = client.get("/admin/kamkeys/outboundemail/")
    assert response.status_code == 200
    assert b"a@b.example" in response.content
    assert b"SECRET-REF-42" not in response.content
