"""API tokens: a machine client's credential, owned and managed by its user."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    """What a token may do. A token never sees more than its user."""

    DEVICES_READ = (
        "devices:read",
        _("devices:read: list and search devices, read the disclosure audit"),
    )
    KEYS_READ = "keys:read", _("keys:read: fetch keys (JSON, encrypted ZIP or KEM)")
    READRIGHTS_WRITE = "readrights:write", _("readrights:write: assign and revoke read rights")


# Scopes that disclose keys or change who may read them: a Super User needs a second factor and
# a recent re-authentication to create a token holding one.
KEY_SCOPES = frozenset({Scope.KEYS_READ.value, Scope.READRIGHTS_WRITE.value})


class ApiToken(models.Model):
    """The token itself is shown once and never stored: ``lookup_id`` finds the row and
    ``secret_hash`` (a keyed HMAC of the whole token) proves it. See docs/decisions/0011."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    scopes = models.JSONField(default=list)
    lookup_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    def state(self, now: datetime | None = None) -> str:
        """'active', 'expired' or 'revoked', as the token list shows it."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])
