"""The API tokens' emails, through the outbox: a token's owner hears of every creation and
revocation (a token they did not make is a stolen session's doing). Never the token itself."""

from __future__ import annotations

from kamkeys import outbox
from kamkeys.links import public_page_url
from kamkeys.models import OutboundEmail


def _context(*, name: str, scopes: list[str], expires_at: str, ip: str) -> dict[str, object]:
    return {
        "name": name,
        "scopes": ", ".join(scopes),
        "expires_at": expires_at,
        "ip": ip or "an unknown address",
        "tokens_url": public_page_url("api_tokens:list"),
    }


def token_created(
    to: str, *, name: str, scopes: list[str], expires_at: str, ip: str
) -> OutboundEmail:
    return outbox.enqueue(
        to,
        "api_token_created",
        _context(name=name, scopes=scopes, expires_at=expires_at, ip=ip),
    )


def token_revoked(
    to: str, *, name: str, scopes: list[str], expires_at: str, ip: str, by_staff: bool
) -> OutboundEmail:
    context = _context(name=name, scopes=scopes, expires_at=expires_at, ip=ip)
    context["by_staff"] = by_staff
    return outbox.enqueue(to, "api_token_revoked", context)
