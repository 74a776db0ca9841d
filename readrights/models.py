"""Read rights given by distributors to customers, and invitations for unknown customers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from devices.models import Device


class ReadRightQuerySet(models.QuerySet["ReadRight"]):
    def live(self, now: datetime | None = None) -> ReadRightQuerySet:
        """Rights that work now: not revoked and not expired. The one spelling of "live read
        right"; expiry is compared at query time, so no job has to end a right."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ReadRight(models.Model):
    """A customer may see and download one device's keys until expiry or revocation.

    Rights are written 100,000 at a time, so the references are checked per statement, not per
    row: PostgreSQL's row-level foreign-key triggers cost seconds per 100,000 rows. On PostgreSQL
    migration 0003 adds statement-level triggers that refuse rows pointing at missing devices or
    users and remove rights when a device or user is deleted by SQL; the ORM cascades as usual.
    """

    device = models.ForeignKey(
        "devices.Device",
        on_delete=models.CASCADE,
        related_name="read_rights",
        db_constraint=False,
        db_index=False,  # the unique (device, grantee) index serves the lookups of live rights
    )
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="read_rights",
        db_constraint=False,
        db_index=False,  # readrights_live_by_grantee serves the lookups
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    objects = ReadRightQuerySet.as_manager()

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
    devices: models.ManyToManyField[Device, InvitationDevice] = models.ManyToManyField(
        "devices.Device", related_name="+", blank=True, through="InvitationDevice"
    )
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


class InvitationDevice(models.Model):
    """One device of an invitation. Bulk-written like ReadRight, with the same statement-level
    reference checks on PostgreSQL instead of row-level foreign-key triggers."""

    invitation = models.ForeignKey(
        Invitation, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["invitation", "device"], name="readrights_invitation_device_unique"
            )
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} of invitation {self.invitation_id}"
