"""Email through an outbox: written in the caller's transaction, sent by Celery after commit.

A periodic task re-sends what is still pending or failed, so a broker or SMTP outage delays mail
but loses none. A row is claimed with one conditional UPDATE before sending, so two workers that
pick up the same row send it once.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from kamkeys import links
from kamkeys.models import OutboundEmail

logger = logging.getLogger(__name__)

RESEND_BATCH = 200


def _fernet() -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"kamkeys outbox context v1"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_context(context: dict[str, Any]) -> bytes:
    return _fernet().encrypt(json.dumps(context, default=str).encode())


def open_context(sealed: bytes) -> dict[str, Any]:
    return json.loads(_fernet().decrypt(bytes(sealed)))


LANGUAGE_KEY = "_language"


def recipient_language(to: str) -> str:
    """The language to write to an address in: the account's chosen language, else the language
    active now (the sender's page: an invitee reads the inviting Super User's language)."""
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    chosen = (
        user_model.objects.filter(email__iexact=to).values_list("language", flat=True).first()
        if hasattr(user_model, "language")
        else ""
    )
    if chosen:
        try:
            return translation.get_supported_language_variant(chosen)
        except LookupError:
            pass
    return translation.get_language() or settings.LANGUAGE_CODE


def enqueue(
    to: str, template: str, context: dict[str, Any], *, language: str | None = None
) -> OutboundEmail:
    """Write the email in the current transaction; hand it to a worker once that commits. It is
    rendered when sent, in ``language`` (default: the recipient's, see recipient_language)."""
    context = {**context, LANGUAGE_KEY: language or recipient_language(to)}
    email = OutboundEmail.objects.create(
        to=to, template=template, sealed_context=seal_context(context)
    )
    transaction.on_commit(lambda: dispatch(email.pk))
    return email


def dispatch(email_id: int) -> None:
    """Ask a worker to send now. A broker outage is not an error: the re-send task catches up."""
    from kamkeys.tasks import send_outbound_email

    try:
        send_outbound_email.apply_async((email_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row pending
        logger.warning("outbox: email %s queued for re-send, broker unavailable: %s", email_id, exc)


def render(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    ctx = {"site_url": links.site_origin(), **context}
    with translation.override(ctx.pop(LANGUAGE_KEY, None) or settings.LANGUAGE_CODE):
        subject = str(render_to_string(f"emails/{template}/subject.txt", ctx))
        subject = subject.strip().replace("\n", " ")
        text = render_to_string(f"emails/{template}/body.txt", ctx)
        html = render_to_string(f"emails/{template}/body.html", ctx)
    return settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, text, html


def claim_period() -> timedelta:
    """How long a worker may take to send before another may assume it died."""
    return timedelta(seconds=settings.KAMKEYS_OUTBOX_CLAIM_SECONDS)


def _claim(email_id: int) -> bool:
    now = timezone.now()
    claimed = (
        OutboundEmail.objects.filter(pk=email_id)
        .filter(status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.FAILED])
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            status=OutboundEmail.Status.SENDING,
            claimed_until=now + claim_period(),
        )
    )
    if claimed:
        return True
    # A worker that died mid-send leaves a stale claim: take it over once it has lapsed.
    return bool(
        OutboundEmail.objects.filter(
            pk=email_id, status=OutboundEmail.Status.SENDING, claimed_until__lt=now
        ).update(claimed_until=now + claim_period())
    )


def backoff(attempts: int) -> timedelta:
    base = settings.KAMKEYS_OUTBOX_BACKOFF_SECONDS
    return timedelta(seconds=min(base * (2 ** max(attempts - 1, 0)), 6 * 3600))


def deliver(email_id: int) -> bool:
    """Send one row if nobody else is sending or has sent it. True when this call sent it."""
    if not _claim(email_id):
        return False
    email = OutboundEmail.objects.get(pk=email_id)
    try:
        subject, text, html = render(email.template, open_context(email.sealed_context))
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [email.to])
        message.attach_alternative(html, "text/html")
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
        attempts = email.attempts + 1
        gave_up = attempts >= settings.KAMKEYS_OUTBOX_MAX_ATTEMPTS or isinstance(exc, InvalidToken)
        OutboundEmail.objects.filter(pk=email_id).update(
            status=OutboundEmail.Status.GAVE_UP if gave_up else OutboundEmail.Status.FAILED,
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {str(exc)[:400]}",
            next_attempt_at=timezone.now() + backoff(attempts),
            claimed_until=None,
        )
        logger.warning(
            "outbox: email %s attempt %s failed: %s", email_id, attempts, type(exc).__name__
        )
        return False
    OutboundEmail.objects.filter(pk=email_id).update(
        status=OutboundEmail.Status.SENT,
        attempts=email.attempts + 1,
        sent_at=timezone.now(),
        last_error="",
        claimed_until=None,
    )
    return True


def due_email_ids(limit: int = RESEND_BATCH) -> list[int]:
    now = timezone.now()
    return list(
        OutboundEmail.objects.filter(
            Q(status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.FAILED])
            | Q(status=OutboundEmail.Status.SENDING, claimed_until__lt=now)
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def resend_due() -> int:
    """Send everything due; the periodic task calls this. Returns how many were sent."""
    return sum(1 for email_id in due_email_ids() if deliver(email_id))
