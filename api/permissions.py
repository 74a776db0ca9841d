"""Scopes, enforced on every endpoint: a view names the one scope it needs."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api import access
from api.models import KEY_SCOPES, ApiToken


class HasScope(BasePermission):
    """The request's token holds ``view.required_scope``; for the key scopes a Super User must
    (still) have a second factor. Views without a scope are refused: nothing is open by
    accident."""

    message = "This token lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None or not token.has_scope(scope):
            self.message = f"This token lacks the scope {scope!s} this endpoint needs."
            return False
        if scope in KEY_SCOPES:
            refusal = access.key_scopes_refused(request.user)
            if refusal:
                self.message = refusal
                return False
        return True
