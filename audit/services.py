"""The one way to write the audit log. Callers pass ids and counts, never key material."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest

from audit.models import AuditEvent
from kamkeys.clientip import client_address

# Device ids kept per event: enough to answer "who downloaded this meter" for ordinary
# selections without making a 100,000-device download a megabyte row; `count` is always exact.
MAX_OBJECT_IDS = 100_000


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address by the project's one rule (trusted proxies, X-Forwarded-For)."""
    return client_address(request)


def record(
    action: str,
    *,
    actor: Any = None,
    actor_label: str | None = None,
    request: HttpRequest | None = None,
    object_type: str = "",
    object_ids: Iterable[int | str] = (),
    count: int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``actor`` is a user or None; ``actor_label`` names 'cli' or 'system'."""
    ids = list(object_ids)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    label = actor_label or (actor.email if actor is not None else "anonymous")
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label[:254],
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_ids=ids[:MAX_OBJECT_IDS],
        count=len(ids) if count is None else count,
        detail=detail or {},
        ip=client_ip(request),
    )
