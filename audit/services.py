"""The one way to write the audit log. Callers pass ids and counts, never key material."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.context import AuditContext
from audit.models import AuditEvent

# Device ids kept per event: enough to answer "who downloaded this meter" for ordinary
# selections without making a 100,000-device download a megabyte row; `count` is always exact.
MAX_OBJECT_IDS = 100_000


def record(
    action: str,
    *,
    context: AuditContext,
    object_type: str = "",
    object_ids: Iterable[int | str] = (),
    count: int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event: who, from where and through which door come from ``context``."""
    ids = list(object_ids)
    actor = context.actor
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    label = context.label or (actor.email if actor is not None else "anonymous")
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label[:254],
        channel=context.channel,
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_ids=ids[:MAX_OBJECT_IDS],
        count=len(ids) if count is None else count,
        detail=detail or {},
        ip=context.client_ip,
    )
