"""Per-token rate limits, counted in the Django cache (Redis wherever REDIS_URL is set)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from api.models import ApiToken
from kamkeys.clientip import client_address


class TokenRateThrottle(SimpleRateThrottle):
    """Every API call of one token (or, before a token is known, of one client address)."""

    scope = "api_token"

    def get_cache_key(self, request: Request, view: Any) -> str:
        token = request.auth
        if isinstance(token, ApiToken):
            ident = f"token:{token.pk}"
        else:
            ident = f"ip:{client_address(request._request) or 'unknown'}"
        return f"api-throttle:{self.scope}:{ident}"


class KeysRateThrottle(TokenRateThrottle):
    """Key requests of one token, on top of the general limit: each may disclose 100,000 keys."""

    scope = "api_keys"
