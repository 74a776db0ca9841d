"""Reads about users and organizations."""

from __future__ import annotations

from typing import Any

from accounts.models import Membership


def super_user_organization_ids(user: Any) -> list[int]:
    """The organizations this user is a Super User of (empty for customers and visitors)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Membership.objects.filter(user=user, role=Membership.Role.SUPER_USER).values_list(
            "organization_id", flat=True
        )
    )


def is_super_user(user: Any) -> bool:
    return bool(super_user_organization_ids(user))
