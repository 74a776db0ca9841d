"""Reads about devices. ``visible_devices`` is the single answer to "who may see what"."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import super_user_organization_ids
from devices.models import Device, DeviceRegistration
from readrights.models import ReadRight


def working_read_rights() -> QuerySet[ReadRight]:
    """Everybody's rights that work now: not revoked and not expired (expiry needs no job)."""
    now = timezone.now()
    return ReadRight.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def live_read_rights(user: Any) -> QuerySet[ReadRight]:
    """The user's rights that work now."""
    return working_read_rights().filter(grantee=user)


def active_registrations() -> QuerySet[DeviceRegistration]:
    """Self-registrations (serial + device code) that still give access: not ended by the
    device's owner. Ended ones stay as rows for the audit trail and give nothing."""
    return DeviceRegistration.objects.filter(ended_at__isnull=True)


# A Super User's own read rights and registrations on devices outside their organizations are
# listed inline up to this many, so PostgreSQL keeps using the (owner, ...) indexes.
MAX_INLINE_EXTRA_IDS = 1000


def visible_scope(user: Any) -> tuple[QuerySet[Device], list[int] | None]:
    """``visible_devices(user)``, and the organization ids when visibility is exactly "owned by
    these organizations" (a Super User without rights elsewhere), which lets the table sort and
    count from the (owner, ...) indexes."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Device.objects.none(), None
    personal = (
        live_read_rights(user)
        .values("device_id")
        .union(active_registrations().filter(user=user).values("device_id"))
    )
    org_ids = super_user_organization_ids(user)
    if not org_ids:
        return Device.objects.filter(pk__in=personal), None
    extra = list(
        Device.objects.filter(pk__in=personal)
        .exclude(owner_id__in=org_ids)
        .order_by()
        .values_list("pk", flat=True)[: MAX_INLINE_EXTRA_IDS + 1]
    )
    if not extra:
        return Device.objects.filter(owner_id__in=org_ids), org_ids
    if len(extra) > MAX_INLINE_EXTRA_IDS:
        return Device.objects.filter(Q(owner_id__in=org_ids) | Q(pk__in=personal)), None
    return Device.objects.filter(Q(owner_id__in=org_ids) | Q(pk__in=extra)), None


def visible_devices(user: Any) -> QuerySet[Device]:
    """Devices this user may see and download: their organization's (Super Users), those they
    hold a live read right for, and those they registered themselves (unless the owner ended
    the registration).

    Written for the planner: an ``owner_id IN (...)`` alone for a Super User (plus a short inline
    id list when they also hold rights elsewhere), and one ``id IN (... UNION ...)`` semi-join for
    everybody else, never an OR of subqueries that would scan every device."""
    return visible_scope(user)[0]


def manageable_devices(user: Any) -> QuerySet[Device]:
    """Devices whose read rights this user may change: those owned by an organization the user
    is a Super User of. Customers manage nothing, even devices they can see."""
    org_ids = super_user_organization_ids(user)
    if not org_ids:
        return Device.objects.none()
    return Device.objects.filter(owner_id__in=org_ids)


def _on_devices(device_ids: list[int]) -> Q | RawSQL:
    """``device_id IN (ids)``; on PostgreSQL one array parameter instead of one per id (psycopg
    dumps each parameter separately: milliseconds for a 500-row page)."""
    if connection.vendor != "postgresql":
        return Q(device_id__in=device_ids)
    literal = "{" + ",".join(str(int(i)) for i in device_ids) + "}"
    return RawSQL("device_id = ANY(%s::bigint[])", (literal,), output_field=BooleanField())


def reader_counts(device_ids: list[int]) -> dict[int, int]:
    """How many customers can read each device, for the "Customers" column: a working read
    right or a self-registration the owner has not ended, a customer with both counted once.
    One query for a page of rows, from the same rules ``visible_devices`` applies."""
    if not device_ids:
        return {}
    on_page = _on_devices(device_ids)
    readers = (
        working_read_rights()
        .filter(on_page)
        .order_by()
        .annotate(reader=F("grantee_id"))
        .values_list("device_id", "reader")
        .union(
            active_registrations()
            .filter(on_page)
            .order_by()
            .annotate(reader=F("user_id"))
            .values_list("device_id", "reader"),
            all=True,
        )
    )
    sql, params = readers.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT device_id, COUNT(DISTINCT reader) "  # noqa: S608 - SQL built by the ORM
            f"FROM ({sql}) AS readers GROUP BY device_id",
            params,
        )
        return dict(cursor.fetchall())


def count_devices(
    queryset: QuerySet[Device], search: dict[str, str], owner_ids: list[int] | None
) -> int:
    """Exact count of a (searched) device list. When the list is "everything these organizations
    own", optionally narrowed by TYPE and TRANSFERRED TO, the trigger-maintained per-(owner,
    type) counts answer without reading up to a million index entries; searches on ORDER # or
    SERIAL # are counted for real."""
    from devices.counts import owned_count
    from devices.search import matching_types

    if owner_ids and set(search) <= {"owner", "type"}:
        ids = owner_ids
        if "owner" in search:
            ids = list(
                Organization.objects.filter(
                    pk__in=owner_ids, name__icontains=search["owner"]
                ).values_list("pk", flat=True)
            )
        types = matching_types(search["type"]) if "type" in search else None
        if not ids or types == []:
            return 0
        counted = owned_count(ids, types)
        if counted is not None:
            return counted
    return queryset.order_by().count()
