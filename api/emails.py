"""The API tokens' emails, through the outbox: a token's owner hears of every creation and
revocation (a token they did not make is a stolen session's doing). Never the token itself.
Written in the owner's language (``User.language``), also when staff revoke in the admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import formats, timezone, translation
from django.utils.translation import gettext

from accounts.languages import language_of
from kamkeys import outbox
from kamkeys.links import public_page_url
from kamkeys.models import OutboundEmail


def _context(
    *, name: str, scopes: list[str], expires_at: datetime, ip: str, language: str
) -> dict[str, object]:
    with translation.override(language):
        return {
            "name": name,
            "scopes": ", ".join(scopes),
            "expires_at": formats.date_format(timezone.localtime(expires_at), "DATETIME_FORMAT"),
            "ip": ip or gettext("an unknown address"),
            "tokens_url": public_page_url("api_tokens:list"),
        }


def token_created(
    owner: Any, *, name: str, scopes: list[str], expires_at: datetime, ip: str
) -> OutboundEmail:
    language = language_of(owner)
    context = _context(name=name, scopes=scopes, expires_at=expires_at, ip=ip, language=language)
    return outbox.enqueue(owner.email, "api_token_created", context, language=language)


def token_revoked(
    owner: Any, *, name: str, scopes: list[str], expires_at: datetime, ip: str, by_staff: bool
) -> OutboundEmail:
    language = language_of(owner)
    context = _context(name=name, scopes=scopes, expires_at=expires_at, ip=ip, language=language)
    context["by_staff"] = by_staff
    return outbox.enqueue(owner.email, "api_token_revoked", context, language=language)
