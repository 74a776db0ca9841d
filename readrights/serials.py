"""Which devices an assignment names: the first few serials and how many more, and the whole
list as a file. Pages and emails name devices by serial so a customer (and the Super User about
to confirm) can tell which meters are meant; a count alone says nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from devices.models import Device
from readrights.models import Invitation, ReadRight

SHOWN = 10  # serials named on a page or in an email before "and N more"


@dataclass(frozen=True)
class SerialPreview:
    shown: list[str]
    more: int

    @property
    def total(self) -> int:
        return len(self.shown) + self.more

    def as_email_context(self) -> dict[str, str | int]:
        """Plain values for the outbox (it stores the context sealed)."""
        return {"serials": ", ".join(self.shown), "more_serials": self.more}


def _preview(serials: QuerySet[Any, str], total: int) -> SerialPreview:
    shown = list(serials[:SHOWN])
    return SerialPreview(shown=shown, more=max(total - len(shown), 0))


def preview(devices: QuerySet[Device]) -> SerialPreview:
    """The first serials of these devices (in serial order) and how many are not shown."""
    ordered = devices.order_by("serial")
    return _preview(ordered.values_list("serial", flat=True), devices.order_by().count())


def granted_preview(grantee_id: int, granted_at: datetime) -> SerialPreview:
    """The devices whose rights one assignment just created for a customer (one timestamp)."""
    rights = ReadRight.objects.filter(grantee_id=grantee_id, granted_at=granted_at)
    serials = rights.order_by("device__serial").values_list("device__serial", flat=True)
    return _preview(serials, rights.count())


def invitation_preview(invitation: Invitation) -> SerialPreview:
    return preview(invitation.devices.all())


def serial_lines(devices: QuerySet[Device]) -> Iterator[str]:
    """Every serial, one a line, streamed in serial order (the "download the list" file)."""
    for serial in devices.order_by("serial").values_list("serial", flat=True).iterator(2000):
        yield f"{serial}\n"
