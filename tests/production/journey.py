"""The production journey's people, secrets, bookkeeping and helpers."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode

from tests.production.stack import Stack

ORG = "Journey Meters A/S"
STAFF = "staff@journey.kamkeys.test"
STAFF_PASSWORD = "Staff-Journey-Granite-2026!"
SUPER = "distributor@journey-meters.example"
SUPER_PASSWORD = "Quartz-Lantern-Meadow-47!"
CUSTOMER = "plant.manager@journey-utility.example"
CUSTOMER_PASSWORD = "Harbour-Kettle-Violet-83!"
CUSTOMER_NEW_PASSWORD = "Orchard-Tunnel-Saffron-61!"
ZIP_PASSWORD = "Harbour lanterns drift past nine quiet meters"
SERIALS = ["71000101", "71000102", "71000103", "71000104", "71000105", "71000106"]
CHOSEN = ["71000102", "71000105"]

LINK = r"https?://[^\s\"<>]+{path}[^/\s\"<>]+/"
ACTIVATION = re.compile(LINK.format(path="/accounts/register/activate/"))
INVITATION = re.compile(LINK.format(path="/read-rights/invitation/"))
RESET = re.compile(LINK.format(path="/accounts/password/reset/key/"))


# --- bookkeeping: wall time per step, and assertions waiting for the app side ------------------


class Steps:
    """Times each step of the journey and says what it checked."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []
        self._started = time.monotonic()

    def step(self, name: str) -> _Timer:
        return _Timer(self, name)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise AssertionError(what)

    def report(self) -> str:
        lines = [f"{seconds:7.1f}s  {name}" for name, seconds in self.rows]
        lines.append(f"{time.monotonic() - self._started:7.1f}s  total")
        return "\n".join(lines)


class _Timer:
    def __init__(self, steps: Steps, name: str) -> None:
        self.steps, self.name = steps, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.steps.rows.append((self.name, time.monotonic() - self.started))


# --- helpers ----------------------------------------------------------------------------------


def totp_code(secret: str, *, not_in: set[str] | None = None) -> str:
    """The current TOTP code; waits for the next period if this one was already used (allauth
    refuses a code twice)."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    while True:
        now = time.time()
        if 30 - now % 30 < 3:  # about to expire before the server sees it: take the next one
            time.sleep(30 - now % 30 + 0.1)
            continue
        code = format_hotp_value(hotp_value(secret, int(now) // 30))
        if not not_in or code not in not_in:
            return code
        time.sleep(1)


def mail_to(stack: Stack, address: str, pattern: re.Pattern, timeout: float = 40) -> str:
    """The one link matching ``pattern`` in the newest email to ``address``, read from SMTP."""
    from tests.kamkeys.realservices import text_of

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in reversed(stack.smtp.messages):
            if address in message.get("To", "") and pattern.search(text_of(message)):
                return pattern.search(text_of(message)).group(0)
        time.sleep(0.2)
    raise AssertionError(f"no email to {address} matching {pattern.pattern}")


def messages_to(stack: Stack, address: str) -> int:
    return sum(address in m.get("To", "") for m in stack.smtp.messages)


def reauthenticate(page, password: str, secret: str, used: set[str]) -> None:  # noqa: ANN001
    """Answer allauth's reauthentication page, by password or by a fresh TOTP code."""
    if page.locator("input[name=code]").count():
        code = totp_code(secret, not_in=used)
        used.add(code)
        page.locator("input[name=code]").fill(code)
        page.locator("input[name=code]").press("Enter")
    else:
        page.locator("input[name=password]").fill(password)
        page.locator("input[name=password]").press("Enter")
    page.wait_for_url(lambda url: "reauthenticate" not in url)


def session_ids(context) -> set[str]:  # noqa: ANN001
    return {c["value"] for c in context.cookies() if c["name"] == "sessionid"}


def form_post(
    stack: Stack,
    path: str,
    fields: dict[str, str],
    *,
    source: str,
    headers: dict[str, str] | None = None,
):  # noqa: ANN201
    """GET the form, then POST it with its CSRF token, as a browser at ``source`` would."""
    page = stack.https("GET", path, source=source)
    assert page.status == 200, (path, page.status)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    cookie = next(c for c in page.cookies() if c.startswith("csrftoken=")).split(";")[0]
    return stack.https(
        "POST",
        path,
        source=source,
        body=urlencode({"csrfmiddlewaretoken": token, **fields}).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "Origin": stack.site_url,
            "Referer": stack.site_url + path,
            **(headers or {}),
        },
    )


def manage_json(stack: Stack, script: str, env: dict[str, str] | None = None) -> dict:
    out = stack.manage("shell", "-c", script, env=env)
    return json.loads(out.strip().splitlines()[-1])


SETUP_SCRIPT = """
import json
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from accounts.models import Organization, User
staff = User.objects.get(email={staff!r})
EmailAddress.objects.update_or_create(
    user=staff, email=staff.email, defaults={{"verified": True, "primary": True}}
)
TOTP.activate(staff, {secret!r})
org = Organization.objects.create(name={org!r}, customer_number="J-1301", kind="distributor")
print(json.dumps({{"org": org.pk}}))
"""

FINGERPRINT_SCRIPT = """
import hashlib, json
from django.db import connection
from accounts.models import Membership, User
from allauth.mfa.models import Authenticator
from devices.models import Device, OwnerTypeCount
from audit.models import AuditEvent
from keyvault.models import DeviceKey
from keyvault.services import stored_plain_keys
from readrights.models import ReadRight
devices = dict(Device.objects.values_list("id", "serial"))
keys = stored_plain_keys(devices)
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal ORDER BY 1, 2"
    )
    triggers = [list(row) for row in cursor.fetchall()]
print(json.dumps({
    "devices": sorted(devices.values()),
    "counts": sorted(
        list(row) for row in OwnerTypeCount.objects.values_list("owner_id", "device_type", "n")
    ),
    "device_keys": DeviceKey.objects.count(),
    "users": sorted(User.objects.values_list("email", flat=True)),
    "memberships": sorted(
        [m, o, r] for m, o, r in Membership.objects.values_list(
            "user__email", "organization__name", "role"
        )
    ),
    "read_rights": ReadRight.objects.count(),
    "authenticators": Authenticator.objects.count(),
    "audit_events": AuditEvent.objects.count(),
    "key_digests": {
        devices[i]: {n: hashlib.sha256(k).hexdigest() for n, k in sorted(ks.items())}
        for i, ks in keys.items()
    },
    "triggers": triggers,
}))
"""
