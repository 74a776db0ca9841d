"""Reads about devices. ``visible_devices`` is the single answer to "who may see what"."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.selectors import super_user_organization_ids
from devices.models import Device, DeviceRegistration
from readrights.models import ReadRight


def live_read_rights(user: Any) -> QuerySet[ReadRight]:
    """Rights that work now: not revoked and not expired (expiry needs no job to run)."""
    now = timezone.now()
    return ReadRight.objects.filter(grantee=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def visible_devices(user: Any) -> QuerySet[Device]:
    """Devices this user may see and download: their organization's (Super Users), those they
    hold a live read right for, and those they registered themselves."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Device.objects.none()
    condition = Q(pk__in=live_read_rights(user).values("device_id")) | Q(
        pk__in=DeviceRegistration.objects.filter(user=user).values("device_id")
    )
    org_ids = super_user_organization_ids(user)
    if org_ids:
        condition |= Q(owner_id__in=org_ids)
    return Device.objects.filter(condition)


def manageable_devices(user: Any) -> QuerySet[Device]:
    """Devices whose read rights this user may change: those owned by an organization the user
    is a Super User of. Customers manage nothing, even devices they can see."""
    org_ids = super_user_organization_ids(user)
    if not org_ids:
        return Device.objects.none()
    return Device.objects.filter(owner_id__in=org_ids)
