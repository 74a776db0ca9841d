"""Assigning read rights to customers by email."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from accounts.selectors import users_with_verified_emails
from audit.context import AuditContext
from audit.models import Action
from audit.services import record
from devices.access import manageable_devices
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
    # Invited before to all of these devices: no email, the link sent before still works.
    already_invited: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_count": self.device_count,
            "granted": self.granted,
            "already": self.already,
            "invited": self.invited,
            "already_invited": self.already_invited,
        }


def assign_read_rights(
    *,
    devices_qs: QuerySet[Device],
    emails_in: Iterable[str],
    expires_at: datetime | None = None,
    message: str = "",
    context: AuditContext,
) -> AssignResult:
    """Give customers read access to devices. Known customers get rights at once and one
    notification each; unknown addresses get one invitation (per owning organization).
    Customers who already hold a right keep it, with the new expiry."""
    granted_by = context.actor
    addresses = clean_emails(list(emails_in), own_email=getattr(granted_by, "email", ""))
    check_expiry(expires_at)
    message = (message or "").strip()
    if len(message) > 2000:
        raise ReadRightsError(gettext("The message may be at most 2,000 characters long."))
    device_ids, owner_ids = _manageable_checked(granted_by, devices_qs)
    # The writes repeat the rule inside their statements, so a device transferred meanwhile is
    # skipped.
    devices_qs = devices_qs.order_by() & manageable_devices(granted_by)
    grant = _Grant(
        devices_qs=devices_qs,
        device_ids=device_ids,
        owner_ids=owner_ids,
        expires_at=expires_at,
        message=message,
        context=context,
    )
    result = AssignResult(device_count=len(device_ids))
    with transaction.atomic():
        # Only a verified login address is an account; any other address gets an invitation.
        users = {u.email: u for u in users_with_verified_emails(addresses)}
        for email in addresses:
            if email in users:
                result.granted[email], result.already[email] = grant.to_customer(users[email])
        for email in addresses:
            if email not in users:
                count, sent = _invite(
                    email=email,
                    owner_ids=owner_ids,
                    devices=grant.devices,
                    expires_at=expires_at,
                    message=message,
                    context=context,
                )
                (result.invited if sent else result.already_invited)[email] = count
    return result


class _Grant:
    """One assignment's devices and terms, granted customer by customer."""

    def __init__(
        self,
        *,
        devices_qs: QuerySet[Device],
        device_ids: list[int],
        owner_ids: list[int],
        expires_at: datetime | None,
        message: str,
        context: AuditContext,
    ) -> None:
        self.devices = Device.objects.filter(pk__in=devices_qs.order_by().values("pk"))
        self.devices_sql, self.params = _ids_sql(devices_qs)
        self.device_ids = device_ids
        self.org_name = _org_name(owner_ids)
        self.expires_at = expires_at
        self.message = message
        self.context = context
        self.now = timezone.now()

    def to_customer(self, user: Any) -> tuple[int, int]:
        """Rights for one known customer: lapsed ones closed, held ones given the new expiry,
        the rest inserted in one statement; emailed when anything is new, always audited.
        Returns (new rights, rights already held)."""
        granted_by = self.context.actor
        _close_lapsed(user.pk, self.devices, self.now)
        already = ReadRight.objects.filter(
            grantee=user, revoked_at__isnull=True, device_id__in=self.devices.values("pk")
        ).update(expires_at=self.expires_at)
        granted = _insert_rights(
            user.pk, granted_by.pk, self.devices_sql, self.params, self.expires_at, self.now
        )
        if granted:
            emails.rights_granted(
                user.email,
                granted_by=granted_by,
                organization=self.org_name,
                count=granted,
                expires_at=self.expires_at,
                message=self.message,
                serials=granted_preview(user.pk, self.now),
                origin=self.context.origin,
            )
        record(
            Action.ASSIGN,
            context=self.context,
            object_type="device",
            object_ids=self.device_ids,
            count=len(self.device_ids),
            detail={
                "grantee": user.email,
                "new_rights": granted,
                "already_held": already,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            },
        )
        return granted, already
