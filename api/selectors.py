"""Reads about API tokens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from api import tokens
from api.models import ApiToken


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def own_token(user: Any, token_id: int) -> ApiToken:
    """One of the user's own tokens; anybody else's id is a 404."""
    return get_object_or_404(ApiToken.objects.select_related("user"), pk=token_id, user=user)


def token_for_secret(secret: str) -> ApiToken | None:
    """The token this secret proves, whatever its state (the caller says why it is refused),
    or None for anything that is not one of ours."""
    lookup_id = tokens.lookup_id_of(secret)
    if lookup_id is None:
        return None
    token = ApiToken.objects.select_related("user").filter(lookup_id=lookup_id).first()
    if token is None or not tokens.matches(secret, token.secret_hash):
        return None
    return token


def token_still_works(token: ApiToken) -> bool:
    """The token is, as of now, neither revoked nor expired, and its user still active: asked
    again between the parts of a long answer, so a revocation stops what has not left yet."""
    return ApiToken.objects.filter(
        pk=token.pk, revoked_at__isnull=True, expires_at__gt=timezone.now(), user__is_active=True
    ).exists()
