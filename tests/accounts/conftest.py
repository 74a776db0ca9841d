"""Helpers for the accounts tests: requests whose emails are really sent (eager Celery)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

GOOD_PASSWORD = "Quartz-Lantern-Meadow-47!"


@pytest.fixture
def send(django_capture_on_commit_callbacks) -> Callable[..., Any]:  # noqa: ANN001
    """send(client.post, url, data) runs the request and then the on-commit email sends."""

    def run(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return method(*args, **kwargs)

    return run


def mails_to(address: str) -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if address in m.to]


def first_link(message: mail.EmailMessage, contains: str) -> str:
    urls = re.findall(r"https?://[^\s\"<>]+", message.body)
    matching = [u for u in urls if contains in u]
    assert matching, f"no link containing {contains!r} in: {message.body}"
    return matching[0]
