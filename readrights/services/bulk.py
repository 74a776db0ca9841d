"""The bulk statements: one INSERT … SELECT or UPDATE per change, whatever the device count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from accounts.selectors import is_super_user
from devices.access import manageable_condition
from devices.models import Device
from readrights.models import Invitation, ReadRight
from readrights.services.common import NotManageable, ReadRightsError

# Bulk statements: table names come from model metadata, {devices} is an ORM-compiled subquery
# of device ids, and every value is a query parameter.
INSERT_RIGHTS = (
    "INSERT INTO {rr} (device_id, grantee_id, granted_by_id, granted_at, expires_at) "
    "SELECT d.id, %s, %s, %s, %s FROM {dev} d WHERE d.id IN ({devices}) "
    "AND NOT EXISTS (SELECT 1 FROM {rr} r WHERE r.device_id = d.id "
    "AND r.grantee_id = %s AND r.revoked_at IS NULL)"
)


INSERT_INVITATION_DEVICES = (
    "INSERT INTO {inv_dev} (invitation_id, device_id) "
    "SELECT %s, d.id FROM {dev} d WHERE d.id IN ({devices}) "
    "AND NOT EXISTS (SELECT 1 FROM {inv_dev} t WHERE t.invitation_id = %s AND t.device_id = d.id)"
)


INSERT_RIGHTS_FROM_INVITATION = (
    "INSERT INTO {rr} (device_id, grantee_id, granted_by_id, granted_at, expires_at) "
    "SELECT d.id, %s, %s, %s, %s FROM {inv_dev} t JOIN {dev} d ON d.id = t.device_id "
    "WHERE t.invitation_id = %s AND d.owner_id = %s "
    "AND NOT EXISTS (SELECT 1 FROM {rr} r WHERE r.device_id = d.id "
    "AND r.grantee_id = %s AND r.revoked_at IS NULL)"
)

# One statement ends the rights and says which of them were still working (for the email).


# {manageable} is devices.access.manageable_devices(revoker) compiled by the ORM, so the rule is
# checked inside the statement.
REVOKE_RIGHTS = (
    "UPDATE {rr} SET revoked_at = %s, revoked_by_id = %s "
    "WHERE {rr}.revoked_at IS NULL AND {rr}.grantee_id = %s "
    "AND {rr}.device_id IN ({manageable}){scope} "
    "RETURNING {rr}.device_id, {rr}.expires_at"
)


def _still_working(expires_at: Any, now: datetime) -> bool:
    """Whether a right (as read back from SQL) had not yet expired."""
    if expires_at is None:
        return True
    if isinstance(expires_at, str):  # SQLite hands back text or naive UTC datetimes
        expires_at = parse_datetime(expires_at)
    if expires_at is None:
        return True
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    return expires_at > now


def _sql(template: str) -> str:
    names = {
        "{rr}": ReadRight._meta.db_table,
        "{dev}": Device._meta.db_table,
        "{inv_dev}": Invitation.devices.through._meta.db_table,
    }
    for placeholder, table in names.items():
        template = template.replace(placeholder, connection.ops.quote_name(table))
    return template


def _dt(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _ids_sql(devices: QuerySet[Device]) -> tuple[str, tuple[Any, ...]]:
    """The device ids as a subquery; an empty selection (``.none()``) is a subquery of nothing."""
    try:
        sql, params = devices.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return "SELECT CAST(NULL AS BIGINT) WHERE 1 = 0", ()  # typed for PostgreSQL
    return sql, tuple(params)


def _manageable_checked(user: Any, devices: QuerySet[Device]) -> tuple[list[int], list[int]]:
    """The device ids, every one of which must be in ``manageable_devices(user)``. Returns
    (device ids, owner organization ids); raises NotManageable otherwise. One query: each row
    carries the rule's answer for its device."""
    if not is_super_user(user):
        raise NotManageable("Only Super Users of the owning organization may change read rights.")
    rows = list(
        devices.order_by()
        .annotate(manageable=ExpressionWrapper(manageable_condition(user), BooleanField()))
        .values_list("pk", "owner_id", "manageable")
    )
    if not rows:
        raise ReadRightsError(gettext("No devices selected. Select devices in My devices first."))
    if not all(manageable for _, _, manageable in rows):
        raise NotManageable("Some of these devices are not yours to share.")
    return [pk for pk, _, _ in rows], sorted({owner for _, owner, _ in rows})


def _insert_rights(
    grantee_id: int,
    granted_by_id: int | None,
    devices_sql: str,
    params: tuple[Any, ...],
    expires_at: datetime | None,
    now: datetime,
) -> int:
    """One INSERT … SELECT of rights for every device in the subquery not already held."""
    sql = _sql(INSERT_RIGHTS).replace("{devices}", devices_sql)
    with connection.cursor() as cursor:
        cursor.execute(
            sql, (grantee_id, granted_by_id, _dt(now), _dt(expires_at), *params, grantee_id)
        )
        return max(cursor.rowcount, 0)


def _close_lapsed(grantee_id: int, devices: QuerySet[Device], now: datetime) -> None:
    """Expired rights end where they expired, so a new right for the same device can start."""
    ReadRight.objects.filter(
        grantee_id=grantee_id,
        revoked_at__isnull=True,
        expires_at__lte=now,
        device_id__in=devices.order_by().values("pk"),
    ).update(revoked_at=F("expires_at"))
