"""Emails of the platform itself (each app keeps its own emails module)."""

from __future__ import annotations

from kamkeys import outbox
from kamkeys.models import OutboundEmail


def send_test_email(to: str, reference: str) -> OutboundEmail:
    """An operator's check that mail leaves the building: outbox → worker → SMTP."""
    return outbox.enqueue(to, "kamkeys_test_email", {"reference": reference})
