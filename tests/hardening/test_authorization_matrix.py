"""The authorization matrix: every view of the portal, as every role, on own and foreign objects.

The list of views comes from the URL configuration: a view added later without an entry in
``PROBES`` makes ``test_every_view_has_an_entry_in_the_matrix`` fail and names it. Each role gets
one world and one walk over every probe (fast); every cell checks the status and that the body
names no foreign serial, no foreign user's email and no key hex. Selection-based views also get
foreign device ids injected, and the database is checked afterwards: nothing foreign was acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.models import AuditEvent
from devices.models import Device, DeviceRegistration
from readrights.models import Invitation, ReadRight
from tests.factories import login, store_selection, stored_selection_ids, web
from tests.hardening.conftest import World
from tests.hardening.figures import add_figure

# The URL namespaces that are ours, and the allauth/mfa pages that matter for keys.
OUR_NAMESPACES = {"accounts", "devices", "readrights", "keyvault", "keyfiles", "api_tokens"}
OUR_TOP_LEVEL = {"home", "healthz"}
ALLAUTH_THAT_MATTER = {
    "account_login",
    "account_logout",
    "account_reauthenticate",
    "mfa_index",
    "account_email",
    "account_change_password",
}

ROLES = [
    "anonymous",
    "user_a",
    "user_b",
    "customer_live",
    "customer_revoked",
    "customer_expired",
    "super_x",
    "super_y",
    "staff",
]
SUPER = {"super_x", "super_y"}
LOGIN = "login"  # a redirect to the login page
ADMIN_LOGIN = "admin login"  # a redirect to the admin's login page
ZIP_PASSWORD = "granite lantern orbit 77"


def url_names() -> set[str]:
    """Every named URL of our apps, plus the allauth pages listed above."""
    names: set[str] = set()

    def walk(resolver: URLResolver, namespace: str | None) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if namespace in OUR_NAMESPACES:
                    names.add(f"{namespace}:{pattern.name}")
                elif namespace is None and pattern.name in OUR_TOP_LEVEL | ALLAUTH_THAT_MATTER:
                    names.add(pattern.name)

    walk(get_resolver(), None)
    return names


# --- what each role owns ------------------------------------------------------------------------


def own_devices(world: World, role: str) -> list[Device]:
    return {
        "user_a": [world.device_a],
        "user_b": [world.device_b],
        "customer_live": [world.devices_x[0]],
        "super_x": [*world.devices_x, world.device_b],
        "super_y": [*world.devices_y, world.device_a],
    }.get(role, [])


def foreign_devices(world: World, role: str) -> list[Device]:
    own = {d.pk for d in own_devices(world, role)}
    return [d for d in world.all_devices() if d.pk not in own]


def own_emails(world: World, role: str) -> set[str]:
    user = world.users[role]
    mine = {user.email} if user else set()
    u = world.users
    # A Super User sees their organization's customers: read rights, invitations, and who
    # registered one of its devices themselves (user B registered X's device_b, user A Y's).
    if role == "super_x":
        mine |= {
            u["customer_live"].email,
            u["customer_revoked"].email,
            u["customer_expired"].email,
            u["user_b"].email,
            world.invitee_x,
        }
    if role == "super_y":
        mine |= {u["customer_y"].email, u["user_a"].email, world.invitee_y}
    return mine


def own_invitation(world: World, role: str) -> Invitation:
    return world.invitation_y if role == "super_y" else world.invitation_x


def foreign_invitation(world: World, role: str) -> Invitation:
    return world.invitation_x if role == "super_y" else world.invitation_y


def own_grantee(world: World, role: str) -> Any:
    return world.users["customer_y" if role == "super_y" else "customer_live"]


def foreign_grantee(world: World, role: str) -> Any:
    return world.users["customer_live" if role == "super_y" else "customer_y"]


def own_registration(world: World, role: str) -> DeviceRegistration:
    """The self-registration of a device the role's organization owns (for others: X's)."""
    return world.registration_a if role == "super_y" else world.registration_b


def foreign_registration(world: World, role: str) -> DeviceRegistration:
    return world.registration_b if role == "super_y" else world.registration_a


def manageable_count(world: World, role: str) -> int:
    return len(own_devices(world, role)) if role in SUPER else 0


# --- the probes ---------------------------------------------------------------------------------


@dataclass
class Probe:
    """One view, one method, one variant: how to call it and what each role must get."""

    name: str
    method: str
    expect: Callable[[str], Any]
    label: str = ""
    kwargs: Callable[[World, str], dict[str, Any]] = lambda world, role: {}
    data: Callable[[World, str], dict[str, Any]] = lambda world, role: {}
    select: bool = False  # put own AND foreign devices into the selection first


def by_role(anonymous: Any, user: Any, super_: Any = None, **overrides: Any) -> Callable:
    """Expected status: anonymous, plain logged-in users (customers, staff), Super Users."""

    def expect(role: str) -> Any:
        if role in overrides:
            return overrides[role]
        if role == "anonymous":
            return anonymous
        if role in SUPER:
            return user if super_ is None else super_
        return user

    return expect


WITH_DEVICES = {"user_a", "user_b", "customer_live", "super_x", "super_y"}


def for_roles_with_devices(yes: Any, no: Any, anonymous: Any = LOGIN) -> Callable:
    def expect(role: str) -> Any:
        if role == "anonymous":
            return anonymous
        return yes if role in WITH_DEVICES else no

    return expect


def _ids(devices: list[Device]) -> list[str]:
    return [str(d.pk) for d in devices]


def _all_ids(world: World, role: str) -> list[str]:
    return _ids([*own_devices(world, role), *foreign_devices(world, role)])


def foreign_token_id(world: World, role: str) -> int:
    """An API token of somebody else (customer Y, who is none of the roles)."""
    if "token" not in world.extra:
        from api.services import create_token

        made = create_token(
            world.users["customer_y"],
            name="erp",
            scopes=["devices:read"],
            context=web(world.users["customer_y"]),
        )
        world.extra["token"] = made.token.pk
    return world.extra["token"]


PROBES: list[Probe] = [
    # --- pages anybody may see
    Probe("home", "GET", by_role(302, 302)),
    Probe("healthz", "GET", by_role(200, 200)),
    Probe("accounts:register", "GET", by_role(200, 302)),
    Probe(
        "accounts:register",
        "POST",
        by_role(302, 302),
        data=lambda w, r: {"email": w.users["user_b"].email},
    ),
    Probe("accounts:register_sent", "GET", by_role(200, 200)),
    Probe("accounts:activate", "GET", by_role(400, 400), kwargs=lambda w, r: {"token": "x" * 40}),
    Probe("accounts:complete_registration", "GET", by_role(400, 400)),
    Probe("accounts:complete_registration", "POST", by_role(400, 400)),
    Probe("accounts:password_check", "GET", by_role(405, 405)),
    Probe(
        "accounts:password_check",
        "POST",
        by_role(200, 200),
        data=lambda w, r: {"password": "short", "name": "x"},
    ),
    Probe("accounts:signup", "GET", by_role(302, 302)),
    Probe("accounts:request_access", "GET", by_role(LOGIN, 200)),
    Probe(
        "accounts:request_access",
        "POST",
        by_role(LOGIN, 302),
        data=lambda w, r: {"customer_name": "Aarhus Water", "message": "please"},
    ),
    Probe("account_login", "GET", by_role(200, 302)),
    Probe(
        "account_login",
        "POST",
        by_role(200, 302),
        data=lambda w, r: {"login": w.users["user_b"].email, "password": "Wrong-password-1!"},
    ),
    Probe("account_reauthenticate", "GET", by_role(LOGIN, 200)),
    Probe("mfa_index", "GET", by_role(LOGIN, 200)),
    Probe("account_email", "GET", by_role(LOGIN, 200)),
    Probe("account_change_password", "GET", by_role(LOGIN, 200)),
    # --- API tokens (the API itself: test_api_authorization_matrix.py)
    Probe("api_tokens:list", "GET", by_role(LOGIN, 200)),
    Probe(
        "api_tokens:list",
        "POST",
        by_role(LOGIN, 201),
        data=lambda w, r: {"name": "head-end", "scopes": ["devices:read"]},
    ),
    Probe(
        "api_tokens:revoke",
        "POST",
        by_role(LOGIN, 404),
        label="somebody else's token",
        kwargs=lambda w, r: {"token_id": foreign_token_id(w, r)},
    ),
    # --- My devices
    Probe("devices:list", "GET", by_role(LOGIN, 200), select=True),
    Probe(
        "devices:list",
        "GET",
        by_role(LOGIN, 200),
        label="search for a foreign serial",
        data=lambda w, r: {"serial": w.devices_y[0].serial},
    ),
    Probe(
        "devices:selection",
        "POST",
        by_role(LOGIN, 302),
        label="select own and foreign ids",
        data=lambda w, r: {"action": "select", "device": _all_ids(w, r)},
    ),
    Probe("devices:paste", "GET", by_role(LOGIN, 200)),
    Probe(
        "devices:paste",
        "POST",
        for_roles_with_devices(200, 200),
        label="own and foreign serials",
        data=lambda w, r: {"serials": " ".join(d.serial for d in w.all_devices())},
    ),
    Probe("devices:register", "GET", by_role(LOGIN, 200)),
    Probe(
        "devices:register",
        "POST",
        by_role(LOGIN, 400),
        label="foreign serial, wrong code",
        data=lambda w, r: {"serial": w.devices_y[2].serial, "code": "99"},
    ),
    Probe("keyfiles:download", "GET", for_roles_with_devices(200, 302), select=True),
    # --- read rights pages
    Probe("readrights:edit", "GET", by_role(LOGIN, 403, 200), select=True),
    Probe("readrights:user_admin", "GET", by_role(LOGIN, 403, 200)),
    Probe(
        "readrights:user_admin",
        "GET",
        by_role(LOGIN, 403, 200),
        label="search for a foreign customer",
        data=lambda w, r: {"q": foreign_grantee(w, r).email},
    ),
    Probe("readrights:assign", "GET", by_role(LOGIN, 403, 200), select=True),
    Probe(
        "readrights:assign",
        "POST",
        by_role(LOGIN, 403, 404),
        label="foreign device ids posted",
        select=True,
        data=lambda w, r: {
            "emails": "forged@utility.example",
            "action": "confirm",
            "device": _all_ids(w, r),
            "device_count": str(len(w.all_devices())),
        },
    ),
    Probe(
        "readrights:assign",
        "POST",
        by_role(LOGIN, 403, 302),
        label="own and foreign selection, confirm",
        select=True,
        data=lambda w, r: {
            "emails": "new.customer@utility.example",
            "action": "confirm",
            "device_count": str(manageable_count(w, r)),
        },
    ),
    Probe("readrights:assign_done", "GET", by_role(LOGIN, 403, 302)),
    Probe("readrights:serial_list", "GET", by_role(LOGIN, 403, 200), select=True),
    Probe(
        "readrights:serial_list",
        "POST",
        by_role(LOGIN, 403, 404),
        label="foreign device ids posted",
        select=True,
        data=lambda w, r: {"device": _all_ids(w, r)},
    ),
    Probe("readrights:accept", "GET", by_role(400, 400)),
    Probe("readrights:accept", "POST", by_role(400, 400)),
    Probe("readrights:invitation", "GET", by_role(400, 400), kwargs=lambda w, r: {"token": "x"}),
    Probe(
        "readrights:invitation",
        "GET",
        by_role(302, 302),
        label="a valid link (the link is the capability)",
        kwargs=lambda w, r: {"token": w.token_x},
    ),
    Probe(
        "readrights:resend_invitation",
        "GET",
        by_role(405, 405),
        kwargs=lambda w, r: {"pk": own_invitation(w, r).pk},
    ),
    Probe(
        "readrights:resend_invitation",
        "POST",
        by_role(LOGIN, 403, 404),
        label="foreign invitation",
        kwargs=lambda w, r: {"pk": foreign_invitation(w, r).pk},
    ),
    Probe(
        "readrights:resend_invitation",
        "POST",
        by_role(LOGIN, 403, 302),
        label="own invitation",
        kwargs=lambda w, r: {"pk": own_invitation(w, r).pk},
    ),
    Probe(
        "readrights:cancel_invitation",
        "GET",
        by_role(405, 405),
        kwargs=lambda w, r: {"pk": own_invitation(w, r).pk},
    ),
    Probe(
        "readrights:cancel_invitation",
        "POST",
        by_role(LOGIN, 403, 404),
        label="foreign invitation",
        kwargs=lambda w, r: {"pk": foreign_invitation(w, r).pk},
    ),
    Probe("readrights:revoke", "GET", by_role(405, 405)),
    Probe(
        "readrights:revoke",
        "POST",
        by_role(LOGIN, 403, 404),
        label="foreign grantee",
        select=True,
        data=lambda w, r: {"grantee": str(foreign_grantee(w, r).pk), "scope": "all"},
    ),
    Probe(
        "readrights:revoke",
        "POST",
        by_role(LOGIN, 403, 404),
        label="own grantee, foreign device ids posted",
        select=True,
        data=lambda w, r: {
            "grantee": str(own_grantee(w, r).pk),
            "device": _ids(foreign_devices(w, r)),
        },
    ),
    Probe(
        "readrights:revoke",
        "POST",
        by_role(LOGIN, 403, 302),
        label="own grantee, own and foreign selection",
        select=True,
        data=lambda w, r: {"grantee": str(own_grantee(w, r).pk)},
    ),
    Probe(
        "readrights:cancel_invitation",
        "POST",
        by_role(LOGIN, 403, 302),
        label="own invitation",
        kwargs=lambda w, r: {"pk": own_invitation(w, r).pk},
    ),
    Probe(
        "readrights:end_registration",
        "GET",
        by_role(405, 405),
        kwargs=lambda w, r: {"pk": own_registration(w, r).pk},
    ),
    Probe(
        "readrights:end_registration",
        "POST",
        by_role(LOGIN, 403, 404),
        label="a registration of a foreign device",
        kwargs=lambda w, r: {"pk": foreign_registration(w, r).pk},
        data=lambda w, r: {"next": "user_admin"},
    ),
    Probe(
        "readrights:end_registration",
        "POST",
        by_role(LOGIN, 403, 404),
        label="an unknown registration id",
        kwargs=lambda w, r: {"pk": 987654321},
    ),
    Probe(
        "readrights:end_registration",
        "POST",
        by_role(LOGIN, 403, 302),
        label="a registration of an own device",
        kwargs=lambda w, r: {"pk": own_registration(w, r).pk},
        data=lambda w, r: {"next": "user_admin"},
    ),
    # --- key disclosure and removal last: they change the world
    Probe(
        "keyfiles:download",
        "POST",
        for_roles_with_devices(200, 302),
        label="own and foreign selection",
        select=True,
        data=lambda w, r: {
            "format": "zip",
            "password": ZIP_PASSWORD,
            "password_repeat": ZIP_PASSWORD,
        },
    ),
    Probe(
        "keyfiles:download",
        "POST",
        for_roles_with_devices(200, 302),
        label="KEM, own and foreign selection",
        select=True,
        data=lambda w, r: {
            "format": "kem",
            "password": "Kem-Pass-77",
            "password_repeat": "Kem-Pass-77",
        },
    ),
    Probe("devices:remove", "GET", for_roles_with_devices(200, 302), select=True),
    Probe("devices:remove", "POST", for_roles_with_devices(302, 302), select=True),
    # --- the admin: staff only; staff see every organization, but never a key
    Probe("admin:index", "GET", by_role(ADMIN_LOGIN, ADMIN_LOGIN, staff=200)),
    Probe(
        "admin:keyvault_devicekey_changelist", "GET", by_role(ADMIN_LOGIN, ADMIN_LOGIN, staff=200)
    ),
    Probe("admin:audit_auditevent_changelist", "GET", by_role(ADMIN_LOGIN, ADMIN_LOGIN, staff=200)),
    Probe(
        "admin:readrights_readright_changelist", "GET", by_role(ADMIN_LOGIN, ADMIN_LOGIN, staff=200)
    ),
    Probe(
        "admin:kamkeys_outboundemail_changelist",
        "GET",
        by_role(ADMIN_LOGIN, ADMIN_LOGIN, staff=200),
    ),
    Probe("accounts:set_language", "GET", by_role(405, 405)),
    Probe(
        "accounts:set_language",
        "POST",
        by_role(302, 302),
        data=lambda w, r: {"language": "da", "next": "https://evil.example/"},
    ),
    Probe(
        "accounts:set_language",
        "POST",
        by_role(400, 400),
        label="unknown language",
        data=lambda w, r: {"language": "xx"},
    ),
    Probe("account_logout", "GET", by_role(302, 200)),
    Probe("account_logout", "POST", by_role(302, 302)),
]


def test_every_view_has_an_entry_in_the_matrix() -> None:
    covered = {probe.name for probe in PROBES}
    missing = sorted(url_names() - covered)
    assert not missing, (
        "these views have no entry in tests/hardening/test_authorization_matrix.py PROBES: "
        + ", ".join(missing)
        + " — add how to call them and what each role must get"
    )
    stale = sorted(covered - url_names() - {p.name for p in PROBES if p.name.startswith("admin:")})
    assert not stale, f"PROBES names views that no longer exist: {stale}"


# --- the walk -----------------------------------------------------------------------------------


def _client(world: World, role: str) -> Client:
    client = Client(raise_request_exception=False)
    user = world.users[role]
    return login(client, user) if user is not None else client


def _inject_selection(client: Client, world: World, role: str) -> None:
    """Own and foreign ids straight into the session (a stale or forged selection): the views
    must limit it to what the user may see themselves."""
    store_selection(client, world.users[role], [d.pk for d in world.all_devices()])


def _status_ok(response: Any, expected: Any) -> bool:
    if expected == ADMIN_LOGIN:
        return response.status_code == 302 and "/admin/login/" in response["Location"]
    if expected == LOGIN:
        return response.status_code == 302 and "/accounts/login/" in response["Location"]
    if isinstance(expected, set):
        return response.status_code in expected
    return response.status_code == expected


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("latin-1")
    return response.content.decode("utf-8", errors="replace")


def _leaks(body: str, echoed: str, world: World, role: str) -> list[str]:
    """Foreign serials and emails (unless the request itself carried them) and any key hex."""
    found = []
    for device in foreign_devices(world, role):
        if device.serial in body and device.serial not in echoed:
            found.append(f"foreign serial {device.serial}")
    for email in world.all_emails() - own_emails(world, role):
        if email in body and email not in echoed:
            found.append(f"foreign email {email}")
    for key in world.key_hex:
        if key in body or key.upper() in body:
            found.append("key hex")
    return found


def walk(world: World, role: str) -> tuple[int, list[str]]:
    """Every probe as this role; returns (cells checked, failures)."""
    failures: list[str] = []
    cells = 0
    for probe in PROBES:
        client = _client(world, role)
        if probe.select:
            own_and_foreign = _all_ids(world, role)
            if world.users[role] is not None:
                client.post(
                    reverse("devices:selection"), {"action": "select", "device": own_and_foreign}
                )
                _inject_selection(client, world, role)
        url = reverse(probe.name, kwargs=probe.kwargs(world, role))
        data = probe.data(world, role)
        send = client.get if probe.method == "GET" else client.post
        response = send(url, data)
        cells += 1
        where = f"{probe.method} {probe.name} {probe.label}".strip()
        expected = probe.expect(role)
        if not _status_ok(response, expected):
            location = response.get("Location", "")
            failures.append(f"{where}: expected {expected}, got {response.status_code} {location}")
        if probe.name == "devices:selection" and world.users[role] is not None:
            stored = stored_selection_ids(client, world.users[role])
            foreign = stored & {d.pk for d in foreign_devices(world, role)}
            if foreign:
                failures.append(f"{where}: foreign ids kept in the selection: {sorted(foreign)}")
        echoed = f"{url} {data!r}"
        if role == "staff" and probe.name.startswith("admin:"):
            echoed += " ".join(d.serial for d in world.all_devices()) + " ".join(world.all_emails())
        for leak in _leaks(_body(response), echoed, world, role):
            failures.append(f"{where}: LEAK {leak}")
    return cells, failures


def _nothing_foreign_acted_on(world: World, role: str) -> list[str]:
    user = world.users[role]
    if user is None:
        return []
    problems = []
    foreign = {d.pk for d in foreign_devices(world, role)}
    granted = ReadRight.objects.filter(granted_by=user, device_id__in=foreign)
    if granted.exists():
        problems.append(f"read rights granted on foreign devices: {list(granted)}")
    revoked = ReadRight.objects.filter(revoked_by=user, device_id__in=foreign)
    if revoked.exists():
        problems.append(f"read rights revoked on foreign devices: {list(revoked)}")
    for event in AuditEvent.objects.filter(actor=user):
        ids = event.object_ids if isinstance(event.object_ids, list) else []
        if event.object_type == "device" and foreign & {i for i in ids if isinstance(i, int)}:
            problems.append(f"audit event {event.action} names foreign devices {ids}")
    if Invitation.objects.filter(email="forged@utility.example").exists():
        problems.append("an invitation was written for a forged device list")
    other = foreign_invitation(world, role)
    other.refresh_from_db()
    if other.revoked_at:
        problems.append("a foreign invitation was cancelled")
    ended = DeviceRegistration.objects.filter(ended_by=user)
    if ended.filter(device_id__in=foreign).exists():
        problems.append(f"registrations of foreign devices ended: {list(ended)}")
    if DeviceRegistration.objects.filter(pk=foreign_registration(world, role).pk).exclude(
        ended_at=None
    ):
        problems.append("a registration of a device of another organization was ended")
    if role in SUPER and not ended.filter(pk=own_registration(world, role).pk).exists():
        problems.append("the own registration was not ended (the probe did not act)")
    if role not in SUPER and ended.exists():
        problems.append(f"a non-Super User ended registrations: {list(ended)}")
    invited = Invitation.objects.filter(email="new.customer@utility.example", invited_by=user)
    if role in SUPER:
        if not invited.exists():
            problems.append("the own assignment wrote no invitation (the probe did not act)")
        if invited.filter(devices__in=list(foreign)).exists():
            problems.append("an invitation names foreign devices")
    if role in WITH_DEVICES and not AuditEvent.objects.filter(actor=user, action="download"):
        problems.append("no download was audited (the probe did not act)")
    live_foreign = foreign_grantee(world, role)
    if (
        role in SUPER
        and not ReadRight.objects.filter(grantee=live_foreign, revoked_at__isnull=True).exists()
    ):
        problems.append(f"the foreign customer {live_foreign.email} lost their right")
    return problems


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_or_sees_what_is_not_theirs(world: World, role: str) -> None:
    cells, failures = walk(world, role)
    failures += _nothing_foreign_acted_on(world, role)
    leaks = sum("LEAK" in f for f in failures)
    add_figure("matrix", cells, leaks)
    assert not failures, f"{role}:\n" + "\n".join(failures)


@pytest.mark.django_db
def test_the_leak_check_sees_a_foreign_serial_email_and_key(world: World) -> None:
    body = f"{world.devices_y[0].serial} {world.users['super_y'].email} {world.key_hex[0].upper()}"
    assert len(_leaks(body, "", world, "super_x")) == 3
    assert _leaks(body, "", world, "super_y") == ["key hex"]
