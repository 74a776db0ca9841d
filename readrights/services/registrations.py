"""Ending a customer's self-registration of a device: access ends at once, and they are told."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.selectors import is_super_user
from audit.context import AuditContext
from audit.models import Action
from audit.services import record
from devices.access import manageable_condition
from devices.models import DeviceRegistration
from readrights import emails
from readrights.services.common import NotManageable, _org_name


def end_registration(*, registration: DeviceRegistration, context: AuditContext) -> bool:
    """End a registration a customer made with serial + device code on a device one of the
    acting Super User's organizations owns. Like a revoked read right, the row stays (ended_at,
    ended_by) and ``visible_devices`` stops counting it, so every page, count and download
    loses the device at once; the same customer cannot register it again with the code.
    Audited, and the customer is told by email, in the same transaction.

    Returns False when it had already ended; raises NotManageable when the device is not the
    Super User's organization's (the views answer 404)."""
    ended_by = context.actor
    if not is_super_user(ended_by):
        raise NotManageable("Only Super Users of the owning organization may end registrations.")
    with transaction.atomic():
        row = (
            DeviceRegistration.objects.select_for_update(of=("self",))
            .select_related("user", "device")
            .filter(manageable_condition(ended_by, via="device__"), pk=registration.pk)
            .first()
        )
        if row is None:
            raise NotManageable("This registration is not on a device of your organization.")
        if row.ended_at is not None:
            return False
        row.ended_at = timezone.now()
        row.ended_by = ended_by
        row.save(update_fields=["ended_at", "ended_by"])
        owner_id = row.device.owner_id
        assert owner_id is not None  # the row was found by its device's owner
        organization = _org_name([owner_id])
        emails.registration_ended(
            row.user.email,
            ended_by=ended_by,
            organization=organization,
            serial=row.device.serial,
            device_type=row.device.device_type,
            origin=context.origin,
        )
        record(
            Action.DEVICE_REGISTRATION_END,
            context=context,
            object_type="device",
            object_ids=[row.device_id],
            count=1,
            detail={
                "user": row.user.email,
                "serial": row.device.serial,
                "registered_at": row.created_at.isoformat(),
            },
        )
    return True
