"""Invitation links: signed, single use, and worthless once a newer link is sent.

The link carries ``{invitation id, nonce}`` signed with Django's signing (SECRET_KEY + salt), so a
changed character is detected. Only a SHA-256 of the nonce is stored: a database reader cannot
rebuild a working link, and every resend replaces the nonce, which kills older links.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.core import signing

SALT = "kamkeys.readrights.invitation.v1"


class BadToken(Exception):
    """The link was not made by us (tampered, truncated or from another installation)."""


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def new_token(invitation_id: int) -> tuple[str, str]:
    """Return (token for the link, hash to store on the invitation)."""
    nonce = secrets.token_urlsafe(24)
    token = signing.dumps({"i": invitation_id, "n": nonce}, salt=SALT)
    return token, _hash(nonce)


def read_token(token: str) -> tuple[int, str]:
    """Return (invitation id, nonce hash) from a link token, or raise BadToken."""
    try:
        payload = signing.loads(token, salt=SALT)
        invitation_id, nonce = int(payload["i"]), str(payload["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise BadToken("invalid invitation link") from exc
    return invitation_id, _hash(nonce)


def hashes_match(stored: str, presented: str) -> bool:
    return bool(stored) and hmac.compare_digest(stored, presented)
