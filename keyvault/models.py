"""Wrapped device keys and the append-only audit log."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class DeviceKey(models.Model):
    """One key of a device (DEK, GPK1…GPK4), wrapped under a versioned KEK. Never plain."""

    # No index of its own: the unique (device, name) constraint below serves device lookups.
    # No database foreign key: PostgreSQL statement triggers (migration 0003) check the device
    # once per statement and remove keys with their devices; row-level checks cost an import
    # of a million keys about ten seconds.
    device = models.ForeignKey(
        "devices.Device",
        on_delete=models.CASCADE,
        related_name="keys",
        db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=16)
    wrapped = models.BinaryField()
    kek_version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "name"], name="keyvault_devicekey_unique")
        ]
        # No index on kek_version: rotation walks the primary key (keyset pagination) and an
        # index on the column it rewrites would make every rewrap update one index more.

    def __str__(self) -> str:
        return f"{self.name} of device {self.device_id} (KEK v{self.kek_version})"


class AppendOnlyError(Exception):
    """Audit events are never changed or removed."""


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events cannot be updated")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit events cannot be deleted")


class AuditEvent(models.Model):
    """Who did what to which objects, when and from where. Never key material."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=254, help_text="The actor's email at the time, or 'cli' / 'system'."
    )
    action = models.CharField(max_length=40, db_index=True)
    outcome = models.CharField(max_length=20, default="ok")
    object_type = models.CharField(max_length=40, blank=True)
    object_ids = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["actor", "action", "created_at"], name="keyvault_audit_actor_action"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} ({self.count})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("audit events cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events cannot be deleted")
