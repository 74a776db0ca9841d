"""Reads about users and organizations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allauth.account.models import EmailAddress
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower

from accounts.models import AccessRequest, Membership, Organization, User
from kamkeys.prepared import PreparedQuery

# One request asks "is this user a Super User, of what?" from the middleware, the navigation and
# the view. The middleware asks first and keeps the answer on request.user (an object that lives
# as long as the request); every other user object is asked afresh.
_ROLE_CACHE = "_kamkeys_super_user_org_ids"


def _super_user_memberships(user_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user_id, role=Membership.Role.SUPER_USER)


# Asked on every request (the middleware): compiled once per process (kamkeys.prepared).
_SUPER_USER_ORGANIZATIONS = PreparedQuery(
    lambda user_id: _super_user_memberships(user_id).values_list("organization_id")
)


def _query_super_user_organization_ids(user: Any) -> list[int]:
    return [row[0] for row in _SUPER_USER_ORGANIZATIONS.run(user_id=user.pk)]


def super_user_organization_ids(user: Any) -> list[int]:
    """The organizations this user is a Super User of (empty for customers and visitors)."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, _ROLE_CACHE, None)
    if cached is not None:
        return list(cached)
    return _query_super_user_organization_ids(user)


def remember_roles(user: Any) -> list[int]:
    """Answer once for this request's user and keep the answer on it for the request."""
    ids = _query_super_user_organization_ids(user)
    setattr(user, _ROLE_CACHE, ids)
    return list(ids)


def forget_roles(user: Any) -> None:
    """Drop the kept answer after the user's memberships change."""
    if user is not None and hasattr(user, _ROLE_CACHE):
        delattr(user, _ROLE_CACHE)


# --- which user an address identifies ----------------------------------------------------------


def users_with_verified_emails(addresses: Iterable[str]) -> QuerySet[User]:
    """The users whose verified login address is one of these addresses.

    The one rule for "who is this address?" (registration, login, password reset, read-right
    assignment, invitations): an address identifies a user only if it is their login address
    (``User.email``) AND they proved it — a verified primary ``EmailAddress`` row for that same
    address, written by registration, an invitation link, the emailed code of the change-address
    flow, or a staff member creating the account. Any other address row identifies nobody.
    """
    wanted = sorted({(address or "").strip().lower() for address in addresses} - {""})
    if not wanted:
        return User.objects.none()
    proven = EmailAddress.objects.annotate(address=Lower("email")).filter(
        user_id=OuterRef("pk"), address=Lower(OuterRef("email")), verified=True, primary=True
    )
    return (
        User.objects.annotate(login=Lower("email")).filter(login__in=wanted).filter(Exists(proven))
    )


def user_for_verified_email(email: str) -> User | None:
    """The user this address identifies, or None (see users_with_verified_emails)."""
    return users_with_verified_emails([email]).first()


def is_super_user(user: Any) -> bool:
    return bool(super_user_organization_ids(user))


def super_user_organizations(user: Any) -> list[Organization]:
    """The organizations (objects) this user is a Super User of, by name."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Organization.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.SUPER_USER
        ).order_by("name")
    )


def super_user_emails(organizations: list[Any], *, exclude: Any = None) -> list[str]:
    """The addresses of the active Super Users of these organizations (None entries skipped),
    each once, without ``exclude`` (a user), for custody notices."""
    org_ids = [org.pk for org in organizations if org is not None]
    if not org_ids:
        return []
    rows = Membership.objects.filter(
        organization_id__in=org_ids, role=Membership.Role.SUPER_USER, user__is_active=True
    )
    if exclude is not None:
        rows = rows.exclude(user_id=exclude.pk)
    return sorted(set(rows.values_list("user__email", flat=True)))


def pending_access_request(user: Any) -> AccessRequest | None:
    """The user's request still waiting for staff, if any (there is at most one)."""
    return AccessRequest.objects.filter(user=user, status=AccessRequest.Status.PENDING).first()


def access_requests_of(user: Any, limit: int = 20) -> list[AccessRequest]:
    """The user's own requests, newest first, to show their status."""
    return list(
        AccessRequest.objects.filter(user=user)
        .select_related("organization")
        .order_by("-created_at")[:limit]
    )


def matching_organization(access_request: AccessRequest) -> Organization | None:
    """The organization the request most likely means: same customer number, else same name."""
    if access_request.customer_number:
        match = Organization.objects.filter(
            customer_number__iexact=access_request.customer_number
        ).first()
        if match:
            return match
    if access_request.customer_name:
        return Organization.objects.filter(name__iexact=access_request.customer_name).first()
    return None
