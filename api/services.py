"""Writes about API tokens: create, revoke, mark as used. Each creation and revocation is one
transaction with its audit event and its email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from api import access, emails, tokens
from api.models import KEY_SCOPES, ApiToken, Scope
from audit import services as audit
from audit.context import AuditContext
from audit.models import Action

# last_used_at is written at most this often per token: a busy client costs no write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be made as asked; the text is safe to show, in the active language
    (the token page's)."""


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once, to its user, on the page that created it; never stored


def create_token(
    user: Any,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    context: AuditContext,
) -> CreatedToken:
    """Make a token for ``user``. Key scopes need a recent re-authentication (the page's guard,
    api.account_views, for everybody) and a Super User's a second factor (checked here)."""
    now = timezone.now()
    name = " ".join((name or "").split())
    if not name:
        raise TokenError(_("Give the token a name, e.g. the system that will use it."))
    if len(name) > 80:
        raise TokenError(_("The name may be at most 80 characters long."))
    wanted = [scope for scope in Scope.values if scope in set(scopes)]
    if not wanted or len(wanted) != len(set(scopes)):
        raise TokenError(_("Choose at least one of the scopes offered."))
    if KEY_SCOPES & set(wanted):
        # The page asks for a recent re-authentication first; the second factor is checked here
        # too, so no other caller can hand a Super User without one a key-disclosing token.
        refusal = access.key_scopes_refused(user)
        if refusal:
            raise TokenError(refusal)
    if expires_at is None:
        expires_at = now + timedelta(days=settings.KAMKEYS_API_TOKEN_DEFAULT_DAYS)
    if expires_at <= now:
        raise TokenError(_("The expiry date is in the past. Choose a later date."))
    if expires_at > now + timedelta(days=settings.KAMKEYS_API_TOKEN_MAX_DAYS, hours=24):
        raise TokenError(_("A token may work for at most one year."))
    new = tokens.generate()
    with transaction.atomic():
        # One account's tokens are made one at a time (the row lock), so two requests at once
        # cannot both slip under the limit.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        limit = settings.KAMKEYS_API_MAX_ACTIVE_TOKENS
        working = ApiToken.objects.filter(
            user=user, revoked_at__isnull=True, expires_at__gt=now
        ).count()
        if working >= limit:
            # A session left open could otherwise make tokens by the thousand, each to be
            # revoked by hand.
            raise TokenError(
                _(
                    "You have %(count)d working tokens, the most one account may hold. Revoke "
                    "one you no longer use, then make the new one."
                )
                % {"count": working}
            )
        token = ApiToken.objects.create(
            user=user,
            name=name,
            scopes=wanted,
            lookup_id=new.lookup_id,
            secret_hash=new.secret_hash,
            expires_at=expires_at,
        )
        event = audit.record(
            Action.API_TOKEN_CREATE,
            context=context,
            object_type="api_token",
            object_ids=[token.pk],
            detail={"token_id": token.pk, "token_name": name, "scopes": wanted},
        )
        emails.token_created(
            user,
            name=name,
            scopes=wanted,
            expires_at=expires_at,
            ip=event.ip or "",
        )
    return CreatedToken(token=token, secret=new.token)


def revoke_token(token: ApiToken, *, context: AuditContext) -> bool:
    """End a token at once. False when it was already revoked (nothing is written)."""
    with transaction.atomic():
        now = timezone.now()
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if not changed:
            return False
        token.revoked_at = now
        event = audit.record(
            Action.API_TOKEN_REVOKE,
            context=context,
            object_type="api_token",
            object_ids=[token.pk],
            detail={"token_id": token.pk, "token_name": token.name, "user": token.user.email},
        )
        emails.token_revoked(
            token.user,
            name=token.name,
            scopes=list(token.scopes),
            expires_at=token.expires_at,
            ip=event.ip or "",
            by_staff=getattr(context.actor, "pk", None) != token.user_id,
        )
    return True


def mark_used(token: ApiToken) -> None:
    """Record that the token was used now, at most once per LAST_USED_RESOLUTION."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
