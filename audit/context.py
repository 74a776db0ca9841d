"""Who acts, from which address, through which door: built once where a change enters the portal
(a view, an admin page, a management command, the API) and handed to the services, which hand it
to ``audit.services.record``. Services never see the ``HttpRequest``.

Besides the audit facts it carries ``origin``, the address the request came to: in the embedded
default (no ``KAMKEYS_SITE_URL``) links in the change's emails follow it (``kamkeys.links``; a
configured site URL always wins).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import models
from django.http import HttpRequest

from kamkeys.clientip import client_address
from kamkeys.links import site_origin


class Channel(models.TextChoices):
    """The door a change came through, stored with its audit event."""

    WEB = "web", "web"
    ADMIN = "admin", "admin"
    COMMAND = "command", "command"
    API = "api", "api"
    SYSTEM = "system", "system"  # the portal itself: a stored key failing its integrity check


@dataclasses.dataclass(frozen=True)
class AuditContext:
    """``actor``: the acting user (``settings.AUTH_USER_MODEL``) or None (a command, a visitor
    not logged in); typed loosely because ``audit`` sits below ``accounts``. ``label`` names an
    actor without an account ("cli", "system")."""

    actor: Any
    client_ip: str | None
    channel: Channel
    label: str = ""
    origin: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest, channel: Channel = Channel.WEB) -> AuditContext:
        """The context of a page or admin request: its user, if logged in, and its client's
        address by the project's one rule (``kamkeys.clientip``)."""
        user = getattr(request, "user", None)
        return cls(
            actor=user if getattr(user, "is_authenticated", False) else None,
            client_ip=client_address(request),
            channel=channel,
            origin=site_origin(request),
        )

    @classmethod
    def command(cls, actor: Any = None) -> AuditContext:
        """A management command run on the server; audited as "cli" unless a user is named."""
        label = "cli" if actor is None else ""
        return cls(actor=actor, client_ip=None, channel=Channel.COMMAND, label=label)

    @classmethod
    def system(cls) -> AuditContext:
        """What the portal records by itself, not on anybody's behalf."""
        return cls(actor=None, client_ip=None, channel=Channel.SYSTEM, label="system")

    def acting_as(self, actor: Any) -> AuditContext:
        """The same request, with the user it has just created or identified (an accepted
        invitation logs the new account as the actor)."""
        return dataclasses.replace(self, actor=actor)
