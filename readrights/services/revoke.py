"""Revoking read rights: access ends at once, and the customer is told."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.selectors import super_user_organization_ids
from audit.context import AuditContext
from audit.models import Action
from audit.services import record
from devices.access import manageable_devices
from devices.models import Device
from readrights import emails
from readrights.models import Invitation, InvitationDevice, ReadRight
from readrights.services.bulk import REVOKE_RIGHTS, _dt, _ids_sql, _sql, _still_working
from readrights.services.common import NotManageable, _org_name


def revoke_read_rights(
    *, grantee: User, devices_qs: QuerySet[Device] | None = None, context: AuditContext
) -> int:
    """End a customer's rights on the given devices (or on all of the acting Super User's
    organizations' devices). Access ends at once; the customer is told by email. Returns how
    many ended."""
    revoked_by = context.actor
    org_ids = super_user_organization_ids(revoked_by)
    if not org_ids:
        raise NotManageable("Only Super Users of the owning organization may revoke read rights.")
    with transaction.atomic():
        now = timezone.now()
        manageable_sql, manageable_params = _ids_sql(manageable_devices(revoked_by))
        sql = _sql(REVOKE_RIGHTS).replace("{manageable}", manageable_sql)
        params: list[Any] = [_dt(now), revoked_by.pk, grantee.pk, *manageable_params]
        if devices_qs is None:
            sql = sql.replace("{scope}", "")
        else:
            sub_sql, sub_params = _ids_sql(devices_qs)
            rr = connection.ops.quote_name(ReadRight._meta.db_table)
            sql = sql.replace("{scope}", f" AND {rr}.device_id IN ({sub_sql})")
            params.extend(sub_params)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        _withdraw(grantee.email, devices_qs, context, org_ids)
        if not rows:
            return 0
        working = [device_id for device_id, expires in rows if _still_working(expires, now)]
        owners = org_ids
        if len(org_ids) > 1:
            owners = sorted(
                set(
                    ReadRight.objects.filter(
                        grantee=grantee, revoked_at=now, revoked_by=revoked_by
                    ).values_list("device__owner_id", flat=True)
                )
            )
        if working:
            emails.rights_revoked(
                grantee.email,
                revoked_by=revoked_by,
                organization=_org_name(owners),
                count=len(working),
                origin=context.origin,
            )
        record(
            Action.REVOKE,
            context=context,
            object_type="device",
            object_ids=working,
            count=len(working),
            detail={"grantee": grantee.email, "scope": "all" if devices_qs is None else "some"},
        )
    return len(working)


def withdraw_invited_devices(
    *, email: str, devices_qs: QuerySet[Device] | None = None, context: AuditContext
) -> int:
    """Take these devices (all of the acting Super User's organizations' devices when None) out
    of the pending invitations to this address: a revoke must not leave a link that grants them
    when it is accepted later. An invitation left without devices is cancelled. Returns how many
    devices were withdrawn."""
    org_ids = super_user_organization_ids(context.actor)
    if not org_ids:
        raise NotManageable("Only Super Users of the owning organization may revoke read rights.")
    return _withdraw(email, devices_qs, context, org_ids)


def _withdraw(
    email: str, devices_qs: QuerySet[Device] | None, context: AuditContext, org_ids: list[int]
) -> int:
    with transaction.atomic():
        pending = Invitation.objects.select_for_update().filter(
            email=email.strip().lower(),
            organization_id__in=org_ids,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        invitation_ids = list(pending.values_list("pk", flat=True))
        if not invitation_ids:
            return 0
        links = InvitationDevice.objects.filter(
            invitation_id__in=invitation_ids,
            device__in=manageable_devices(context.actor).values("pk"),
        )
        if devices_qs is not None:
            links = links.filter(device__in=devices_qs.values("pk"))
        device_ids = sorted(set(links.values_list("device_id", flat=True)))
        if not device_ids:
            return 0
        links.delete()
        emptied = list(
            Invitation.objects.filter(pk__in=invitation_ids)
            .exclude(
                pk__in=InvitationDevice.objects.filter(invitation_id__in=invitation_ids).values(
                    "invitation_id"
                )
            )
            .values_list("pk", flat=True)
        )
        Invitation.objects.filter(pk__in=emptied).update(revoked_at=timezone.now())
        record(
            Action.REVOKE,
            context=context,
            object_type="device",
            object_ids=device_ids,
            count=len(device_ids),
            detail={"invited": email, "invitations": invitation_ids, "cancelled": emptied},
        )
    return len(device_ids)
