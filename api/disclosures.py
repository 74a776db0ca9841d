"""The organization's audit of key disclosures: downloads and exports (web, API, CLI) that
included devices its Super User's organizations own; each event shows only those devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.models import Action, AuditEvent
from devices.models import Device
from kamkeys.sqlarrays import column_in
from keyfiles.disclosures import DISCLOSURES, disclosures_of

__all__ = ["DISCLOSURES", "Disclosure", "describe", "disclosures_of"]

MAX_SERIALS_PER_EVENT = 1000


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
