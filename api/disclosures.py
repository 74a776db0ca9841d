"""The organization's audit of key disclosures: downloads and exports (web, API, CLI) that
included devices its Super User's organizations own; each event shows only those devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from audit.models import Action, AuditEvent
from devices.models import Device
from kamkeys.sqlarrays import column_in

DISCLOSURES = (Action.DOWNLOAD, Action.EXPORT)
MAX_SERIALS_PER_EVENT = 1000


def _touches_organizations(org_ids: list[int]) -> RawSQL:
    """Some device id of the event is owned by one of ``org_ids`` (object_ids is a JSON list;
    PostgreSQL's ``json`` type, audit.fields.WrittenJSONField)."""
    events = connection.ops.quote_name(AuditEvent._meta.db_table)
    devices = connection.ops.quote_name(Device._meta.db_table)
    owners = ", ".join(str(int(pk)) for pk in org_ids)
    if connection.vendor == "postgresql":
        sql = (
            f"EXISTS (SELECT 1 FROM json_array_elements_text({events}.object_ids) AS e(v) "  # noqa: S608
            f"JOIN {devices} d ON d.id = e.v::bigint WHERE d.owner_id IN ({owners}))"
        )
    else:
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({events}.object_ids) AS e "  # noqa: S608
            f"JOIN {devices} d ON d.id = e.value WHERE d.owner_id IN ({owners}))"
        )
    # Table names from the models, owner ids int()-ed above: no outside text in the SQL.
    return RawSQL(sql, (), output_field=BooleanField())  # noqa: S611


def disclosures_of(org_ids: list[int], since: datetime | None = None) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(action__in=DISCLOSURES, outcome="ok")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if not org_ids:
        return events.none()
    return events.filter(_touches_organizations(org_ids))


@dataclass
class Disclosure:
    id: int
    at: datetime
    actor: str
    action: str
    channel: str
    token: dict[str, Any] | None
    format: str | None
    device_count: int
    serials: list[str]
    serials_truncated: bool


def _channel(event: AuditEvent) -> str:
    """The event's channel (web, api, command); events older than the column say it in their
    detail (the API's) or by their action (an export is a command)."""
    if event.channel:
        return str(event.channel)
    channel = (event.detail or {}).get("channel")
    if channel:
        return str(channel)
    return "command" if event.action == Action.EXPORT else "web"


def describe(events: list[AuditEvent], org_ids: list[int]) -> list[Disclosure]:
    """Each event with only the organizations' own devices of it (another organization's
    devices in the same download are not theirs to see)."""
    out = []
    for event in events:
        ids = [int(pk) for pk in event.object_ids or []]
        own = Device.objects.filter(column_in("id", ids), owner_id__in=org_ids).order_by("serial")
        serials = list(own.values_list("serial", flat=True)[: MAX_SERIALS_PER_EVENT + 1])
        truncated = len(serials) > MAX_SERIALS_PER_EVENT
        detail = event.detail or {}
        token = None
        if detail.get("token_id") is not None:
            token = {"id": detail["token_id"], "name": detail.get("token_name", "")}
        out.append(
            Disclosure(
                id=event.pk,
                at=event.created_at,
                actor=event.actor_label,
                action=event.action,
                channel=_channel(event),
                token=token,
                format=detail.get("format"),
                device_count=own.count() if truncated else len(serials),
                serials=serials[:MAX_SERIALS_PER_EVENT],
                serials_truncated=truncated,
            )
        )
    return out
