"""The append-only audit log: who did what to which objects, when and from where."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models

from audit.context import Channel
from audit.fields import WrittenJSONField


class Action(models.TextChoices):
    """The actions the log records. The stored strings are the ones written since the start
    (some dotted, some not), and each is its own label, so the admin shows what is stored; the
    names are what the code uses."""

    DOWNLOAD = "download", "download"
    EXPORT = "export", "export"
    IMPORT = "import", "import"
    ROTATE = "rotate", "rotate"
    UNWRAP_FAILED = "unwrap_failed", "unwrap_failed"
    DEVICE_REGISTER = "device.register", "device.register"
    DEVICE_REMOVE = "device.remove", "device.remove"
    DEVICE_REGISTRATION_END = "device.registration_end", "device.registration_end"
    DEVICE_EDIT = "device.edit", "device.edit"  # staff changed a device's data in the admin
    TRANSFER = "transfer", "transfer"
    ASSIGN = "assign", "assign"
    REVOKE = "revoke", "revoke"
    INVITE = "invite", "invite"
    ACCEPT = "accept", "accept"
    GRANT_SUPER_USER = "grant_super_user", "grant_super_user"
    REVOKE_SUPER_USER = "revoke_super_user", "revoke_super_user"
    STAFF_CHANGE = "staff_change", "staff_change"  # staff or superuser status, groups
    API_TOKEN_CREATE = "api_token.create", "api_token.create"
    API_TOKEN_REVOKE = "api_token.revoke", "api_token.revoke"


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
    action = models.CharField(max_length=40, db_index=True, choices=Action.choices)
    channel = models.CharField(
        max_length=10,
        choices=Channel.choices,
        blank=True,
        default="",
        help_text="The door the change came through; empty for events written before it was kept.",
    )
    outcome = models.CharField(max_length=20, default="ok")
    object_type = models.CharField(max_length=40, blank=True)
    object_ids = WrittenJSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        # Moved from keyvault without moving data: the table keeps its name.
        db_table = "keyvault_auditevent"
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
