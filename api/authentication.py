"""``Authorization: Bearer kk_live_…``: the token acts as its user, no more."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from api import selectors, services
from api.models import ApiToken

REFUSED = "The token is unknown, malformed, expired or revoked."


class TokenAuthentication(BaseAuthentication):
    """Refuses (401) a bad, expired or revoked token at once, and a token whose user is no
    longer active; the token is never echoed or logged."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the token as 'Authorization: Bearer kk_live_…'."
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(REFUSED) from None
        token = selectors.token_for_secret(secret)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(REFUSED)
        state = token.state(timezone.now())
        if state != "active":
            raise exceptions.AuthenticationFailed(f"This token is {state}.")
        services.mark_used(token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="kamkeys"'


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from the account menu (API tokens): kk_live_…",
        }
