"""The key canary through the API: a known key, a file password and the API token itself go
through every API flow (token page, lists, keys as JSON and files, bad input, read rights, the
disclosure audit, revocation); then logs (SQL included), every database column (the audit),
emails, every other response and every URL are searched. The key may appear in exactly one
place, the JSON keys response that was asked for it; the token only on the page that made it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core import mail
from django.db import connection

from accounts.models import Organization
from keyvault.services import store_device_keys
from tests.factories import DeviceFactory, OrganizationFactory, UserFactory, login, make_super_user
from tests.hardening.figures import add_figure
from tests.hardening.test_key_canary import (
    CANARY,
    FILE_PASSWORD,
    NEEDLES,
    Places,
    RecordingClient,
    _emails,
    _every_column,
)


class TokenClient(RecordingClient):
    """A recording client that sends the API token on every request."""

    def __init__(self, places: Places, token: str) -> None:
        super().__init__(places, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.django_db
def test_no_key_token_or_password_leaks_through_the_api(
    caplog,
    root_stream,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    places = Places()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True
    mail.outbox.clear()
    try:
        token, key_response = _drive_the_api(places, django_capture_on_commit_callbacks)
    finally:
        connection.force_debug_cursor = False

    assert CANARY.hex().upper() in key_response, "the keys response carries the key asked for"
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        text += f" {getattr(record, 'sql', '')} {getattr(record, 'params', '')!r}"
        places.add(f"log record {record.name}:{record.lineno}", text)
    places.add("caplog text", caplog.text)
    places.add("root StreamHandler", root_stream.getvalue())
    assert "api_apitoken" in caplog.text, "the SQL log was captured"
    _every_column(places)
    _emails(places)

    needles = {**NEEDLES, "API token": token, "API token secret part": token.rsplit("_", 1)[1]}
    hits = []
    for where, text in places.texts:
        if where.startswith("token page"):
            continue  # the one response that shows the token, once
        for label, needle in needles.items():
            if needle in text or (label.endswith("(hex)") and needle in text.lower()):
                hits.append(f"{label} in {where}")
    add_figure("api_canary", len(places.texts), len(hits))
    assert not hits, "\n".join(hits)


def _drive_the_api(places: Places, on_commit: Any) -> tuple[str, str]:
    org = OrganizationFactory(name="Canary Distributor", kind=Organization.Kind.DISTRIBUTOR)
    super_user = make_super_user(org, email="canary.super@distributor.example")
    customer = UserFactory(email="canary.customer@utility.example")
    device = DeviceFactory(owner=org, serial="88000001")
    store_device_keys(device, {"DEK": CANARY})
    other = DeviceFactory(owner=org, serial="88000002")
    store_device_keys(other, {"DEK": bytes(16)})

    page = login(RecordingClient(Places()), super_user)
    with on_commit(execute=True):
        created = page.post(
            "/accounts/api-tokens/",
            {
                "name": "canary head-end",
                "scopes": ["devices:read", "keys:read", "readrights:write"],
            },
        )
    assert created.status_code == 201
    token = created.context["secret"]
    places.add("token page (the one place the token is shown)", created.content)
    web = login(RecordingClient(places), super_user)
    web.get("/accounts/api-tokens/")

    api = TokenClient(places, token)
    api.get("/api/v1/devices/")
    api.get("/api/v1/devices/88000001/")
    api.get("/api/v1/devices/99999999/")
    api.get("/api/v1/devices/", {"changed_since": "not a date"})
    keys = TokenClient(Places(), token).post(
        "/api/v1/keys/", {"serials": ["88000001"]}, content_type="application/json"
    )
    key_response = b"".join(keys.streaming_content).decode()
    api.post(
        "/api/v1/keys/",
        {"serials": ["88000001", "88000002"], "format": "zip", "password": FILE_PASSWORD},
        content_type="application/json",
    )
    api.post(
        "/api/v1/keys/",
        {"serials": ["88000001"], "format": "zip", "password": FILE_PASSWORD[:5]},
        content_type="application/json",
    )
    api.post(
        "/api/v1/keys/",
        {"serials": ["88000001"], "format": "kem", "password": FILE_PASSWORD},
        content_type="application/json",
    )
    api.post("/api/v1/keys/", "{broken", content_type="application/json")
    with on_commit(execute=True):
        api.post(
            "/api/v1/read-rights/assign/",
            {"serials": ["88000001"], "emails": [customer.email]},
            content_type="application/json",
        )
        api.post(
            "/api/v1/read-rights/revoke/",
            {"serials": ["88000001"], "emails": [customer.email]},
            content_type="application/json",
        )
    api.get("/api/v1/audit/disclosures/")
    api.get("/api/v1/nowhere/")
    RecordingClient(places, headers={"Authorization": f"Bearer {token}x"}).get("/api/v1/devices/")
    RecordingClient(places, headers={"Authorization": "Basic Zm9vOmJhcg=="}).get("/api/v1/devices/")
    with on_commit(execute=True):
        web.post(f"/accounts/api-tokens/{super_user.api_tokens.get().pk}/revoke/")
    api.get("/api/v1/devices/")
    return token, key_response
