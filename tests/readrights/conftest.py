"""Helpers for read-rights tests: the email outbox, selections and invitation links."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

INVITATION_LINK = re.compile(r"https?://[^\s\"<>]+/read-rights/invitation/([^/\s\"<>]+)/")


def invitation_token(message: mail.EmailMessage) -> str:
    """The token in an invitation email's link (tests play the customer's mail client)."""
    found = INVITATION_LINK.search(message.body)
    assert found, "the invitation email carries a link"
    return found.group(1)


def select(client: Client, devices: list) -> None:
    """Put devices into the My devices selection of this client's session."""
    session = client.session
    session["devices_selection"] = {
        "ids": [d.pk for d in devices],
        "searches": [],
        "excluded": [],
    }
    session.save()


@pytest.fixture
def outbox(django_capture_on_commit_callbacks):  # noqa: ANN001, ANN201
    """Run a block with on-commit callbacks executed, then read django.core.mail.outbox."""
    mail.outbox.clear()

    class Box:
        def __call__(self):  # noqa: ANN204
            return django_capture_on_commit_callbacks(execute=True)

        @property
        def messages(self) -> list:
            return list(mail.outbox)

        def to(self, address: str) -> list:
            return [m for m in mail.outbox if address in m.to]

    return Box()
