"""The API's one door to the other apps' access rules and key-disclosing services.

Every rule of who may see, download or change what is asked here, through the project's access
module (``devices.access``), the download (``keyfiles.downloads.build_download``, given ids this
request read inside the user's downloadable devices) and the read-rights services, each given
the request's ``AuditContext`` (channel ``api``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext

from accounts.access import needs_mfa_setup
from accounts.selectors import is_super_user, super_user_organization_ids, user_for_verified_email
from audit.context import AuditContext, Channel
from devices.access import (
    active_registrations,
    downloadable_devices,
    live_read_rights,
    manageable_devices,
    visible_devices,
)
from devices.models import Device
from devices.search import scope_for_search
from keyfiles.downloads import Download, build_download
from keyfiles.keystream import plain_keys_of
from readrights.services import (
    AssignResult,
    NotManageable,
    ReadRightsError,
    assign_read_rights,
    revoke_read_rights,
    withdraw_invited_devices,
)

__all__ = [
    "AssignResult",
    "NotManageable",
    "ReadRightsError",
    "assign",
    "audit_context",
    "download_file",
    "downloadable",
    "is_super_user",
    "key_scopes_refused",
    "manageable",
    "organization_ids",
    "plain_keys",
    "revoke_for_emails",
    "visible",
    "visible_changed_since",
    "visible_for_search",
]


def audit_context(request: HttpRequest) -> AuditContext:
    """Who acts (the token's user, set on the request by the authentication), from which
    address, through the API: built once per request and handed to every service."""
    return AuditContext.from_request(request, Channel.API)


def visible(user: Any) -> QuerySet[Device]:
    """Devices the token's user may see and download (their own visibility, never more)."""
    return visible_devices(user)


def visible_for_search(user: Any, search: Mapping[str, Any]) -> QuerySet[Device]:
    """``visible(user)`` written for a search as My devices writes it
    (``devices.search.scope_for_search``): for a Super User with an ORDER # / SERIAL # substring
    the owner is a bigint, so the (owner_id, lower(...)) trigram index reads only their
    devices' matches instead of every owner's (then filtered in the heap). The same devices;
    for keys the same as ``downloadable(user)``."""
    return scope_for_search(user, search)[0]


def downloadable(user: Any) -> QuerySet[Device]:
    """Devices whose keys the token's user may fetch: what they may see (the web download's
    rule, ``devices.access.downloadable_devices``)."""
    return downloadable_devices(user)


def manageable(user: Any) -> QuerySet[Device]:
    """Devices whose read rights the token's user may change."""
    return manageable_devices(user)


def organization_ids(user: Any) -> list[int]:
    """The organizations the user is a Super User of (their disclosure audit)."""
    return super_user_organization_ids(user)


def visible_changed_since(user: Any, devices: QuerySet[Device], since: datetime) -> Q:
    """Changed since ``since`` for this user: the device changed, or it became visible to them
    then (a read right granted, a registration made), which a head-end syncing "what changed
    since yesterday" must also hear of."""
    # One semi-join over a UNION of ids, never an OR of subqueries: PostgreSQL guesses half the
    # table for each "id IN (subquery)" inside an OR and then filters every device of the owner
    # (1.2 s at 5,000,000 devices); the UNION's parts are each an index range (0.2 ms for "the
    # last hour"). A changed_since older than most changes reads and sorts every id it matches
    # (1.1 s for a million): a first sync asks without changed_since.
    changed = (
        devices.order_by()
        .filter(changed_at__gte=since)
        .values("pk")
        .union(
            live_read_rights(user).order_by().filter(granted_at__gte=since).values("device_id"),
            active_registrations()
            .order_by()
            .filter(user=user, created_at__gte=since)
            .values("device_id"),
        )
    )
    return Q(pk__in=changed)


def key_scopes_refused(user: Any) -> str | None:
    """Why this user's token may not disclose keys or change read rights now, or None: a Super
    User without a second factor (while KAMKEYS_SUPERUSER_MFA_REQUIRED) is refused, as on the
    pages. In the active language: the token page's; the API asks in English."""
    if needs_mfa_setup(user):
        return gettext(
            "Super Users must have two-factor authentication turned on to fetch keys or change "
            "read rights; turn it on in the portal."
        )
    return None


def download_file(
    ids: Sequence[int],
    *,
    fmt: str,
    password: str,
    context: AuditContext,
    audit_detail: dict[str, Any],
) -> Download:
    """The web download's file (encrypted ZIP or KEM) of these devices, audited with the API's
    detail. ``ids``: distinct and ascending, read inside ``downloadable(context.actor)`` in this
    same request (``api.devicesets.resolve``): the file is written from them directly, without
    a second pass over the request's devices before its first byte."""
    return build_download(
        checked_ids=ids,
        fmt=fmt,
        password=password,
        context=context,
        audit_detail=audit_detail,
    )


def plain_keys(ids: Sequence[int]) -> Iterator[tuple[Any, dict[str, bytes]]]:
    """The download's key stream (DeviceRow, plain keys) of these devices, in id order. The
    ids were read inside the token user's scope in this same request."""
    return plain_keys_of(ids)


def assign(
    devices: QuerySet[Device],
    emails: Iterable[str],
    *,
    expires_at: datetime | None,
    message: str,
    context: AuditContext,
) -> AssignResult:
    """The web pages' assignment: same rules, invitations, emails and audit."""
    return assign_read_rights(
        devices_qs=devices,
        emails_in=emails,
        expires_at=expires_at,
        message=message,
        context=context,
    )


def revoke_for_emails(
    addresses: list[str], devices: QuerySet[Device], *, context: AuditContext
) -> dict[str, int]:
    """End each address's rights on these devices, in one transaction: how many ended per
    address. For an address that is nobody's verified login yet, the devices leave its pending
    invitations instead (how many left)."""
    revoked: dict[str, int] = {}
    with transaction.atomic():
        for email in addresses:
            grantee = user_for_verified_email(email)
            if grantee is None:  # invited, not registered: its pending invitation loses them
                revoked[email] = withdraw_invited_devices(
                    email=email, devices_qs=devices, context=context
                )
            else:
                revoked[email] = revoke_read_rights(
                    grantee=grantee, devices_qs=devices, context=context
                )
    return revoked
