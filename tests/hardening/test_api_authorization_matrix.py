"""The API's authorization matrix: every /api/v1/ endpoint × every token scope × every role ×
own and foreign objects, plus no token and a revoked one.

The endpoints come from the URL configuration: one without an entry in ``API_PROBES`` fails
``test_every_api_endpoint_has_an_entry`` by name. Every cell checks the status (401 without a
working token, 403 without the scope, then the role's answer) and that the body holds no foreign
serial, no foreign email and no foreign key; a foreign write leaves the database unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from api import services
from readrights.models import Invitation, ReadRight
from tests.factories import web
from tests.hardening.conftest import World
from tests.hardening.figures import add_figure
from tests.hardening.test_authorization_matrix import (
    ROLES,
    SUPER,
    foreign_devices,
    own_devices,
    own_emails,
)

SCOPES = ["devices:read", "keys:read", "readrights:write"]
ZIP_PASSWORD = "granite lantern orbit 77"
OWN, FOREIGN = "own", "foreign"


@dataclass
class ApiProbe:
    name: str  # URL name in the "api" namespace
    method: str
    path: Callable[[World, str, str], str]  # (world, role, own|foreign) -> path
    scope: str | None  # None: public (schema, docs)
    expect: Callable[[str, str], int]  # (role, own|foreign) -> status with the scope
    body: Callable[[World, str, str], dict[str, Any]] | None = None
    writes: bool = False


def serials(world: World, role: str, which: str) -> list[str]:
    devices = own_devices(world, role) if which == OWN else foreign_devices(world, role)
    return [d.serial for d in devices]


def first_serial(world: World, role: str, which: str) -> str:
    return (serials(world, role, which) or ["99999999"])[0]


def has_own(role: str) -> bool:
    return role in {"user_a", "user_b", "customer_live", *SUPER}


def customer_email(world: World, role: str) -> str:
    return world.users["customer_y" if role == "super_y" else "customer_live"].email


def _device_status(role: str, which: str) -> int:
    return 200 if which == OWN and has_own(role) else 404


def _super_write(role: str, which: str) -> int:
    if role not in SUPER:
        return 403
    return 200 if which == OWN else 400


API_PROBES: list[ApiProbe] = [
    ApiProbe(
        "devices", "GET", lambda w, r, o: "/api/v1/devices/", "devices:read", lambda r, o: 200
    ),
    ApiProbe(
        "devices",
        "GET",
        lambda w, r, o: f"/api/v1/devices/?serial={first_serial(w, r, o)}",
        "devices:read",
        lambda r, o: 200,
    ),
    ApiProbe(
        "device",
        "GET",
        lambda w, r, o: f"/api/v1/devices/{first_serial(w, r, o)}/",
        "devices:read",
        _device_status,
    ),
    ApiProbe(
        "keys",
        "POST",
        lambda w, r, o: "/api/v1/keys/",
        "keys:read",
        lambda r, o: 200,
        body=lambda w, r, o: {"serials": serials(w, r, o) or ["99999999"]},
    ),
    ApiProbe(
        "keys",
        "POST",
        lambda w, r, o: "/api/v1/keys/",
        "keys:read",
        lambda r, o: 200,
        body=lambda w, r, o: {"search": {"serial": first_serial(w, r, o)}},
    ),
    ApiProbe(
        "keys",
        "POST",
        lambda w, r, o: "/api/v1/keys/",
        "keys:read",
        lambda r, o: 200 if o == OWN and has_own(r) else 400,
        body=lambda w, r, o: {
            "serials": serials(w, r, o) or ["99999999"],
            "format": "zip",
            "password": ZIP_PASSWORD,
        },
    ),
    ApiProbe(
        "readrights_assign",
        "POST",
        lambda w, r, o: "/api/v1/read-rights/assign/",
        "readrights:write",
        _super_write,
        writes=True,
        body=lambda w, r, o: {
            "serials": serials(w, r, o)[:1] or ["99999999"],
            "emails": ["new.customer@utility-new.example"],
        },
    ),
    ApiProbe(
        "readrights_revoke",
        "POST",
        lambda w, r, o: "/api/v1/read-rights/revoke/",
        "readrights:write",
        _super_write,
        writes=True,
        body=lambda w, r, o: {
            "serials": serials(w, r, o) or ["99999999"],
            "emails": [customer_email(w, r)],
        },
    ),
    ApiProbe(
        "disclosures",
        "GET",
        lambda w, r, o: "/api/v1/audit/disclosures/",
        "devices:read",
        lambda r, o: 200 if r in SUPER else 403,
    ),
    ApiProbe("schema", "GET", lambda w, r, o: "/api/v1/schema/", None, lambda r, o: 200),
    ApiProbe("docs", "GET", lambda w, r, o: "/api/v1/docs/", None, lambda r, o: 200),
]


def api_url_names() -> set[str]:
    names: set[str] = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == "api":
            names |= {p.name for p in pattern.url_patterns if isinstance(p, URLPattern) and p.name}
    return names


def test_every_api_endpoint_has_an_entry() -> None:
    missing = sorted(api_url_names() - {probe.name for probe in API_PROBES})
    assert not missing, f"add these API endpoints to API_PROBES: {missing}"


def _call(client: Client, probe: ApiProbe, path: str, body: Any, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if probe.method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, body, content_type="application/json", headers=headers)


def _text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("latin-1")
    return response.content.decode("utf-8", errors="replace")


def _leaks(world: World, role: str, text: str, sent: str) -> list[str]:
    found = []
    keys = dict(zip([d.pk for d in world.all_devices()], world.key_hex, strict=True))
    for device in foreign_devices(world, role):
        if device.serial in text and device.serial not in sent:
            found.append(f"foreign serial {device.serial}")
        if keys[device.pk].upper() in text or keys[device.pk] in text:
            found.append(f"foreign key of {device.serial}")
    for email in world.all_emails() - own_emails(world, role):
        if email in text and email not in sent:
            found.append(f"foreign email {email}")
    return found


def _state() -> tuple[Any, ...]:
    return (
        sorted(ReadRight.objects.values_list("device_id", "grantee_id", "revoked_at")),
        sorted(Invitation.objects.values_list("pk", "email")),
    )


def walk(world: World, role: str) -> tuple[int, list[str]]:
    user = world.users[role]
    tokens: dict[str, str] = {}
    if user is not None:
        for scope in SCOPES:
            tokens[scope] = services.create_token(
                user, name=scope, scopes=[scope], context=web(user)
            ).secret
        revoked = services.create_token(user, name="revoked", scopes=SCOPES, context=web(user))
        services.revoke_token(revoked.token, context=web(user))
        tokens["revoked"] = revoked.secret
    failures: list[str] = []
    cells = 0
    for probe in API_PROBES:
        for which in (OWN, FOREIGN):
            path = probe.path(world, role, which)
            body = probe.body(world, role, which) if probe.body else None
            sent = path + str(body)
            for held in [None, *tokens]:
                token = tokens.get(held) if held else None
                if probe.scope is None:
                    expected = probe.expect(role, which)
                elif token is None or held == "revoked":
                    expected = 401
                elif held != probe.scope:
                    expected = 403
                else:
                    expected = probe.expect(role, which)
                before = _state() if probe.writes and which == FOREIGN else None
                response = _call(Client(raise_request_exception=False), probe, path, body, token)
                cells += 1
                where = f"{role} {probe.method} {path} [{which}, token {held}]"
                if response.status_code != expected:
                    failures.append(f"{where}: {response.status_code}, expected {expected}")
                    continue
                problem = response["Content-Type"] == "application/problem+json"
                if response.status_code >= 400 and probe.scope is not None and not problem:
                    failures.append(f"{where}: {response['Content-Type']}, not a problem")
                failures += [
                    f"{where}: {leak}" for leak in _leaks(world, role, _text(response), sent)
                ]
                if before is not None and _state() != before:
                    failures.append(f"{where}: a foreign write changed the database")
    return cells, failures


@pytest.mark.parametrize("role", ROLES)
def test_every_api_endpoint_as_every_role_and_scope(world: World, role: str) -> None:
    cells, failures = walk(world, role)
    add_figure("api_matrix", cells, len(failures))
    assert not failures, "\n".join(failures)
