"""Who may see, manage and download which devices: the one place each rule is written.

Every page, count, selection, download and read-rights change starts from these functions; no
other module restates a rule (healthchecks' ``_get_check_for_user`` is the model). The rules:

- *visible*: devices of the organizations the user is a Super User of, plus devices with a live
  read right (``ReadRight.objects.live()``), plus devices the user registered with serial +
  device code while the owner has not ended the registration;
- *downloadable*: the visible devices (a file holds exactly what the user may see); the server's
  operator (``manage.py export_keys``) may download every device;
- *manageable* (read rights may be changed, registrations ended): devices owned by an
  organization the user is a Super User of. Customers manage nothing, even what they see.

This is also the one module of ``devices`` that knows read rights exist (an import against the
layering, listed in docs/architecture.md): visibility depends on them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.selectors import super_user_organization_ids
from devices.models import Device, DeviceRegistration
from kamkeys.prepared import PreparedQuery
from readrights.models import ReadRight, ReadRightQuerySet

# A Super User's own read rights and registrations on devices outside their organizations are
# listed inline up to this many, so PostgreSQL keeps using the (owner, ...) indexes.
MAX_INLINE_EXTRA_IDS = 1000


class Operator(enum.Enum):
    """Whoever runs ``manage.py`` on the server: they hold the database and the KEK ring
    already, so every device is theirs to export. Only management commands pass it; nothing in
    a web request can produce it."""

    CONSOLE = "console"


OPERATOR: Literal[Operator.CONSOLE] = Operator.CONSOLE


def live_read_rights(user: Any = None, now: datetime | None = None) -> ReadRightQuerySet:
    """The read rights that work now (``ReadRight.objects.live()``), the user's only when a user
    is given."""
    rights = ReadRight.objects.live(now)
    return rights if user is None else rights.filter(grantee=user)


def read_rights_held_by(user: Any) -> ReadRightQuerySet:
    """Every read-right row of the user, live or not: Remove device ends the user's own."""
    return ReadRight.objects.filter(grantee=user)


def active_registrations() -> QuerySet[DeviceRegistration]:
    """Self-registrations (serial + device code) that still give access: not ended by the
    device's owner. Ended ones stay as rows for the audit trail and give nothing."""
    return DeviceRegistration.objects.filter(ended_at__isnull=True)


def _personal(user: Any, now: datetime | None = None) -> QuerySet[Any]:
    """Ids of the devices the user holds a live read right for or registered themselves."""
    return (
        live_read_rights(user, now)
        .values("device_id")
        .union(active_registrations().filter(user=user).values("device_id"))
    )


def _personal_outside(user_id: int, org_ids: list[int], now: datetime) -> QuerySet[Any]:
    return (
        Device.objects.filter(pk__in=_personal(user_id, now))
        .exclude(owner_id__in=org_ids)
        .order_by()
        .values_list("pk", flat=True)[: MAX_INLINE_EXTRA_IDS + 1]
    )


# Asked on every page of a Super User: the SQL is compiled once per process (kamkeys.prepared).
_PERSONAL_OUTSIDE = PreparedQuery(_personal_outside)


def visible_scope(user: Any) -> tuple[QuerySet[Device], list[int] | None]:
    """``visible_devices(user)``, and the organization ids when visibility is exactly "owned by
    these organizations" (a Super User without rights elsewhere), which lets the table sort and
    count from the (owner, ...) indexes."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Device.objects.none(), None
    org_ids = super_user_organization_ids(user)
    if not org_ids:
        return Device.objects.filter(pk__in=_personal(user)), None
    extra = [
        row[0]
        for row in _PERSONAL_OUTSIDE.run(user_id=user.pk, org_ids=org_ids, now=timezone.now())
    ]
    if not extra:
        return Device.objects.filter(owner_id__in=org_ids), org_ids
    if len(extra) > MAX_INLINE_EXTRA_IDS:
        return Device.objects.filter(Q(owner_id__in=org_ids) | Q(pk__in=_personal(user))), None
    return Device.objects.filter(Q(owner_id__in=org_ids) | Q(pk__in=extra)), None


def visible_devices(user: Any) -> QuerySet[Device]:
    """Devices this user may see: their organizations' (Super Users), those they hold a live
    read right for, and those they registered themselves (unless the owner ended it).

    Written for the planner: an ``owner_id IN (...)`` alone for a Super User (plus a short inline
    id list when they also hold rights elsewhere), and one ``id IN (... UNION ...)`` semi-join for
    everybody else, never an OR of subqueries that would scan every device."""
    return visible_scope(user)[0]


def downloadable_devices(user: Any) -> QuerySet[Device]:
    """Devices whose keys may be written to a file for ``user``: what they may see (the same
    query shape), or every device for the ``OPERATOR``."""
    if user is OPERATOR:
        return Device.objects.all()
    return visible_devices(user)


def manageable_condition(user: Any, *, via: str = "") -> Q:
    """The manageable-devices rule as a condition, for rows that reach a device through ``via``
    (``"device__"`` for read rights and registrations): a join the planner already has is
    cheaper than an ``IN (subquery)``. Matches nothing for anybody who is not a Super User."""
    return Q(**{f"{via}owner_id__in": super_user_organization_ids(user)})


def manageable_devices(user: Any) -> QuerySet[Device]:
    """Devices whose read rights this user may change, and whose self-registrations they may
    end: those owned by an organization the user is a Super User of."""
    return Device.objects.filter(manageable_condition(user))
