"""Reads about read rights: who holds what on a distributor's devices, and pending invitations.

Everything here is scoped to the organizations the asking user is a Super User of, so a foreign
id simply finds nothing (and the views turn that into a 404 that reveals nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest

from accounts.models import Organization, User
from accounts.selectors import is_super_user, super_user_organization_ids
from audit.models import Action
from devices.access import active_registrations, manageable_condition, manageable_devices
from devices.models import Device, DeviceRegistration
from keyfiles.disclosures import disclosures_of
from readrights.models import Invitation, ReadRight


def selected_devices(request: HttpRequest) -> QuerySet[Device]:
    """The devices selected in My devices (already limited to what the user may see)."""
    from devices.selection import selected_devices as devices_selection

    return devices_selection(request)


def selected_manageable_devices(request: HttpRequest) -> QuerySet[Device]:
    """The selected devices whose read rights this user may change."""
    return selected_devices(request).order_by() & manageable_devices(request.user)


def devices_by_ids(user: Any, ids: Iterable[str]) -> QuerySet[Device]:
    """Devices named explicitly in a form. Any id that is malformed, unknown, deleted or not
    this user's to manage makes the whole set not found: nothing is written for a forged POST."""
    wanted: set[int] = set()
    for raw in ids:
        try:
            pk = int(raw)
        except (TypeError, ValueError):
            raise Http404("No such devices") from None
        if not 0 < pk < 2**63:  # beyond a database id: SQLite raised OverflowError (a 500)
            raise Http404("No such devices")
        wanted.add(pk)
    if not wanted:
        raise Http404("No such devices")
    found = manageable_devices(user).filter(pk__in=wanted)
    if found.count() != len(wanted):
        raise Http404("No such devices")
    return Device.objects.filter(pk__in=wanted)


@dataclass(frozen=True)
class Holder:
    """One customer holding rights on a set of devices."""

    user_id: int
    email: str
    name: str
    organizations: str
    device_count: int
    first_granted_at: datetime | None
    last_granted_at: datetime | None
    earliest_expiry: datetime | None
    some_without_expiry: bool
    last_download_at: datetime | None = None

    @property
    def expiry_varies(self) -> bool:
        return self.earliest_expiry is not None and self.some_without_expiry


def _organizations_by_user(user_ids: list[int]) -> dict[int, str]:
    names: dict[int, list[str]] = {}
    rows = Organization.objects.filter(memberships__user_id__in=user_ids).values_list(
        "memberships__user_id", "name"
    )
    for user_id, name in rows:
        names.setdefault(user_id, []).append(name)
    return {uid: ", ".join(sorted(n)) for uid, n in names.items()}


def _holders(rights: QuerySet[ReadRight], *, downloads_of: list[int] | None = None) -> list[Holder]:
    """The customers holding ``rights``; with ``downloads_of`` (organization ids), when each
    last downloaded keys of those organizations' devices (never of anybody else's)."""
    rows = list(
        rights.values("grantee_id", "grantee__email", "grantee__name")
        .annotate(
            device_count=Count("device_id", distinct=True),
            first_granted_at=Min("granted_at"),
            last_granted_at=Max("granted_at"),
            earliest_expiry=Min("expires_at"),
            without_expiry=Count("id", filter=Q(expires_at__isnull=True)),
        )
        .order_by("grantee__email")
    )
    user_ids = [row["grantee_id"] for row in rows]
    orgs = _organizations_by_user(user_ids)
    downloads: dict[int, datetime] = {}
    if downloads_of and user_ids:
        downloads = dict(
            disclosures_of(downloads_of, actions=(Action.DOWNLOAD,))
            .filter(actor_id__in=user_ids)
            .values("actor_id")
            .annotate(last=Max("created_at"))
            .order_by()
            .values_list("actor_id", "last")
        )
    return [
        Holder(
            user_id=row["grantee_id"],
            email=row["grantee__email"],
            name=row["grantee__name"],
            organizations=orgs.get(row["grantee_id"], ""),
            device_count=row["device_count"],
            first_granted_at=row["first_granted_at"],
            last_granted_at=row["last_granted_at"],
            earliest_expiry=row["earliest_expiry"],
            some_without_expiry=row["without_expiry"] > 0,
            last_download_at=downloads.get(row["grantee_id"]),
        )
        for row in rows
    ]


def holders_of(devices: QuerySet[Device]) -> list[Holder]:
    """Customers with working rights on these devices, with how many of them each holds."""
    rights = ReadRight.objects.live().filter(device_id__in=devices.order_by().values("pk"))
    return _holders(rights)


def customers_of(user: Any, search: str = "") -> list[Holder]:
    """User Administration: everybody holding working rights on the user's organizations'
    devices, with device counts and when they last downloaded keys of those devices."""
    if not is_super_user(user):
        return []
    rights = ReadRight.objects.live().filter(manageable_condition(user, via="device__"))
    search = search.strip()
    if search:
        rights = rights.filter(
            Q(grantee__email__icontains=search) | Q(grantee__name__icontains=search)
        )
    return _holders(rights, downloads_of=super_user_organization_ids(user))


def pending_invitations(
    user: Any, devices: QuerySet[Device] | None = None, search: str = ""
) -> QuerySet[Invitation]:
    """Invitations of the user's organizations not yet accepted or cancelled (expired links are
    listed too, so they can be re-sent), optionally only those covering some of ``devices``."""
    org_ids = super_user_organization_ids(user)
    invitations = Invitation.objects.filter(
        organization_id__in=org_ids, accepted_at__isnull=True, revoked_at__isnull=True
    )
    if devices is not None:
        through = Invitation.devices.through
        invitations = invitations.filter(
            pk__in=through.objects.filter(device_id__in=devices.order_by().values("pk")).values(
                "invitation_id"
            )
        )
    if search.strip():
        invitations = invitations.filter(email__icontains=search.strip())
    count = (
        Invitation.devices.through.objects.filter(invitation_id=OuterRef("pk"))
        .order_by()
        .values("invitation_id")
        .annotate(n=Count("device_id"))
        .values("n")
    )
    return invitations.select_related("invited_by", "organization").annotate(
        device_count=Subquery(count)
    )


def managed_grantee(user: Any, grantee_id: object) -> User:
    """A customer holding (or having held) rights on the user's organizations' devices; 404
    for anybody else, so the id reveals nothing."""
    try:
        pk = int(str(grantee_id))
    except (TypeError, ValueError):
        raise Http404("No such customer") from None
    if not 0 < pk < 2**63:  # beyond a database id: SQLite raised OverflowError (a 500)
        raise Http404("No such customer")
    holds = ReadRight.objects.filter(manageable_condition(user, via="device__"), grantee_id=pk)
    if not is_super_user(user) or not holds.exists():
        raise Http404("No such customer")
    return User.objects.get(pk=pk)


def registrations_of(
    user: Any, devices: QuerySet[Device] | None = None, search: str = ""
) -> QuerySet[DeviceRegistration]:
    """Self-registrations (serial + device code) that still give access to the user's
    organizations' devices, newest first, optionally only on ``devices`` or for customers whose
    email or name contains ``search``. Shown beside read rights so the owner can end them."""
    if not is_super_user(user):
        return DeviceRegistration.objects.none()
    registrations = active_registrations().filter(manageable_condition(user, via="device__"))
    if devices is not None:
        registrations = registrations.filter(device_id__in=devices.order_by().values("pk"))
    search = search.strip()
    if search:
        registrations = registrations.filter(
            Q(user__email__icontains=search) | Q(user__name__icontains=search)
        )
    # Newest first by id (ids grow with created_at): PostgreSQL walks the primary key backwards
    # and stops after a page, instead of joining every registration to a million devices.
    return registrations.select_related("user", "device").order_by("-pk")


def managed_registration(user: Any, registration_id: object) -> DeviceRegistration:
    """A registration that still works, of a device one of the user's organizations owns; 404
    for anything else (foreign, ended, unknown), so the id reveals nothing."""
    try:
        pk = int(str(registration_id))
    except (TypeError, ValueError):
        raise Http404("No such registration") from None
    registration = registrations_of(user).filter(pk=pk).first()
    if registration is None:
        raise Http404("No such registration")
    return registration


def managed_invitation(user: Any, invitation_id: object) -> Invitation:
    """An invitation sent for one of the user's organizations; 404 otherwise."""
    org_ids = super_user_organization_ids(user)
    try:
        pk = int(str(invitation_id))
    except (TypeError, ValueError):
        raise Http404("No such invitation") from None
    invitation = Invitation.objects.filter(pk=pk, organization_id__in=org_ids).first()
    if invitation is None:
        raise Http404("No such invitation")
    return invitation
