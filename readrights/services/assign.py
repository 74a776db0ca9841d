"""Assigning read rights to customers by email."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from accounts.selectors import users_with_verified_emails
from audit.models import Action
from audit.services import record
from devices.models import Device
from readrights import emails
from readrights.models import ReadRight
from readrights.serials import granted_preview
from readrights.services.bulk import (
    _close_lapsed,
    _ids_sql,
    _insert_rights,
    _manageable_checked,
)
from readrights.services.common import ReadRightsError, _org_name, check_expiry, clean_emails
from readrights.services.invitations import _invite


@dataclass
class AssignResult:
    """What an assignment did, for the done page."""

    device_count: int = 0
    granted: dict[str, int] = field(default_factory=dict)  # existing customer → new rights
    already: dict[str, int] = field(default_factory=dict)  # existing customer → already held
    invited: dict[str, int] = field(default_factory=dict)  # unknown email → devices in invitation

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_count": self.device_count,
            "granted": self.granted,
            "already": self.already,
            "invited": self.invited,
        }


def assign_read_rights(
    granted_by: Any,
    devices_qs: QuerySet[Device],
    emails_in: Iterable[str],
    expires_at: datetime | None = None,
    message: str = "",
    request: HttpRequest | None = None,
) -> AssignResult:
    """Give customers read access to devices. Known customers get rights at once and one
    notification each; unknown addresses get one invitation (per owning organization).
    Customers who already hold a right keep it, with the new expiry."""
    addresses = clean_emails(list(emails_in), own_email=getattr(granted_by, "email", ""))
    check_expiry(expires_at)
    message = (message or "").strip()
    if len(message) > 2000:
        raise ReadRightsError(gettext("The message may be at most 2,000 characters long."))
    device_ids, owner_ids = _manageable_checked(granted_by, devices_qs)
    # The writes repeat the ownership condition, so a device transferred meanwhile is skipped.
    devices_qs = devices_qs.filter(owner_id__in=owner_ids)
    devices = Device.objects.filter(pk__in=devices_qs.order_by().values("pk"))
    devices_sql, params = _ids_sql(devices_qs)
    result = AssignResult(device_count=len(device_ids))
    now = timezone.now()
    org_name = _org_name(owner_ids)

    with transaction.atomic():
        # Only a verified login address is an account; any other address gets an invitation.
        users = {u.email: u for u in users_with_verified_emails(addresses)}
        for email in addresses:
            user = users.get(email)
            if user is None:
                continue
            _close_lapsed(user.pk, devices, now)
            already = ReadRight.objects.filter(
                grantee=user, revoked_at__isnull=True, device_id__in=devices.values("pk")
            ).update(expires_at=expires_at)
            granted = _insert_rights(user.pk, granted_by.pk, devices_sql, params, expires_at, now)
            result.granted[email] = granted
            result.already[email] = already
            if granted:
                emails.rights_granted(
                    email,
                    granted_by=granted_by,
                    organization=org_name,
                    count=granted,
                    expires_at=expires_at,
                    message=message,
                    serials=granted_preview(user.pk, now),
                )
            record(
                Action.ASSIGN,
                actor=granted_by,
                request=request,
                object_type="device",
                object_ids=device_ids,
                count=len(device_ids),
                detail={
                    "grantee": email,
                    "new_rights": granted,
                    "already_held": already,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        for email in addresses:
            if email in users:
                continue
            result.invited[email] = _invite(
                granted_by, email, owner_ids, devices, expires_at, message, request
            )
    return result
