"""Which devices a request names: serials (each checked and reported on its own) or a search,
always inside a device set the access module gave (visible or manageable)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet

from api import access
from api.problems import Problem
from devices.forms import SERIAL_RE
from devices.models import Device
from devices.search import clean_search, search_q
from kamkeys.sqlarrays import array_literal, column_in


@dataclass
class DeviceSet:
    devices: QuerySet[Device]
    unknown_serials: list[str] = field(default_factory=list)
    invalid_serials: list[str] = field(default_factory=list)
    ids: list[int] | None = None  # the devices' ids in ascending order, when already read

    def sorted_ids(self) -> list[int]:
        if self.ids is None:
            self.ids = sorted(set(self.devices.order_by().values_list("pk", flat=True)))
        return self.ids


def _with_serials(scope: QuerySet[Device], serials: list[str]) -> Iterable[tuple[int, str]]:
    """(id, serial) of the scope's devices with these serials. On PostgreSQL the scope's own
    SQL joined to the sorted serials: the planner merges them along the (owner, serial) index
    instead of testing a 100,000-element array against every device of the scope."""
    if connection.vendor != "postgresql":
        rows = (
            scope.filter(column_in("serial", serials, "text"))
            .order_by()
            .values_list("pk", "serial")
        )
        return rows.iterator(chunk_size=20_000)
    sql, params = scope.order_by().values_list("pk", "serial").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.pk, d.serial FROM ({sql}) AS d(pk, serial) "  # noqa: S608 - ORM SQL
            "JOIN unnest(%s::text[]) AS s(serial) ON d.serial = s.serial",
            [*params, array_literal(sorted(serials), "text")],
        )
        return cursor.fetchall()


def by_serials(scope: QuerySet[Device], serials: list[str]) -> DeviceSet:
    """The devices of ``scope`` with these serials. A serial that is malformed is "invalid"; one
    that names no device in scope is "unknown", whether or not it exists elsewhere."""
    invalid: list[str] = []
    valid: list[str] = []
    seen: set[str] = set()
    for serial in serials:
        if serial in seen:
            continue
        seen.add(serial)
        (valid if SERIAL_RE.fullmatch(serial) and serial.isascii() else invalid).append(serial)
    if not valid:
        return DeviceSet(Device.objects.none(), [], invalid)
    ids: list[int] = []
    found: set[str] = set()
    for pk, serial in _with_serials(scope, valid):
        ids.append(pk)
        found.add(serial)
    ids.sort()
    unknown = [serial for serial in valid if serial not in found]
    # Later reads find these devices by id, one primary-key probe each: the ids were read inside
    # the scope in this same request (the read-rights services also check ownership in their
    # own SQL). Re-reading them through the scope cost a second scan of the organization.
    devices = Device.objects.filter(column_in("id", ids)) if ids else Device.objects.none()
    return DeviceSet(devices, unknown, invalid, ids)


def changed_since_q(user: Any, scope: QuerySet[Device], since: datetime) -> Q:
    return access.visible_changed_since(user, scope, since)


def by_search(user: Any, scope: QuerySet[Device], params: dict[str, Any]) -> QuerySet[Device]:
    """My devices' column searches, plus changed_since."""
    devices = scope.filter(search_q(clean_search(params)))
    if params.get("changed_since") is not None:
        devices = devices.filter(changed_since_q(user, scope, params["changed_since"]))
    return devices


def resolve(user: Any, scope: QuerySet[Device], data: dict[str, Any]) -> DeviceSet:
    """The device set of a keys or read-rights request, at most KAMKEYS_API_MAX_SERIALS."""
    if "serials" in data:
        return by_serials(scope, data["serials"])
    devices = by_search(user, scope, data["search"])
    limit = settings.KAMKEYS_API_MAX_SERIALS
    ids = list(devices.order_by().values_list("pk", flat=True)[: limit + 1])
    if len(ids) > limit:
        raise Problem(
            400,
            f"The search matches more than {limit:,} devices. Narrow it (e.g. with "
            "changed_since or a serial prefix) or send serial numbers.",
            title="Too many devices",
        )
    return DeviceSet(devices, ids=sorted(ids))


def refuse_unknown(device_set: DeviceSet) -> None:
    """A write (or a file) names only devices it can act on: otherwise a 400 listing them."""
    if device_set.unknown_serials or device_set.invalid_serials:
        raise Problem(
            400,
            "Some serial numbers are malformed or name no device you may use; nothing was done.",
            title="Unknown or malformed serial numbers",
            unknown_serials=device_set.unknown_serials,
            invalid_serials=device_set.invalid_serials,
        )
