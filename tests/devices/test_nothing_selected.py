"""Download file, Remove device and Edit read rights answer an empty selection the same way:
back to My devices with one message saying what to do — before any re-authentication."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

ACTIONS = [
    ("keyfiles:download", "Download file"),
    ("devices:remove", "Remove device"),
    ("readrights:edit", "Edit read rights"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "label"), ACTIONS)
def test_an_empty_selection_is_sent_back_to_my_devices_with_what_to_do(
    client_for, super_user_x, devices_x, monkeypatch, name, label
):
    client = client_for(super_user_x)
    real_time = time.time
    # Long after the login: a key action would first ask to re-authenticate.
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"] == reverse("devices:list")
    page = client.get(reverse("devices:list"))
    messages = [str(m) for m in page.context["messages"]]
    assert messages == [
        f"No devices are selected. Tick devices in My devices first, then choose {label}."
    ]
