"""The email outbox: every email is a row written with the change that causes it."""

from __future__ import annotations

from django.db import models


class OutboundEmail(models.Model):
    """One email to send. Its context is sealed (encrypted) because links in it carry tokens."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        GAVE_UP = "gave_up", "Gave up"

    to = models.EmailField(max_length=254)
    template = models.CharField(max_length=100, help_text="Template set under templates/emails/.")
    sealed_context = models.BinaryField(editable=False)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="kamkeys_outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.to} ({self.get_status_display()})"
