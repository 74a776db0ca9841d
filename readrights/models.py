"""Read rights given by distributors to customers, and invitations for unknown customers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class ReadRight(models.Model):
    """A customer may see and download one device's keys until expiry or revocation."""

    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, related_name="read_rights"
    )
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_rights"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "grantee"],
                condition=Q(revoked_at__isnull=True),
                name="readrights_one_live_right_per_device_grantee",
            )
        ]
        indexes = [
            models.Index(
                fields=["grantee", "device"],
                condition=Q(revoked_at__isnull=True),
                name="readrights_live_by_grantee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grantee} may read {self.device_id}"


class Invitation(models.Model):
    """An unknown customer is invited by email; accepting creates the account and the rights."""

    email = models.EmailField(max_length=254)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="invitations"
    )
    devices = models.ManyToManyField("devices.Device", related_name="+", blank=True)
    message = models.TextField(blank=True, max_length=2000)
    rights_expire_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    token_hash = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of the nonce in the newest link; a new link makes older ones useless.",
    )
    last_sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "email"], name="readrights_invite_org_email"),
            models.Index(
                fields=["email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="readrights_invite_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation to {self.email}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)
