"""Done when (issue 15): a real HTTP client, against a live server, logs in through the pages,
makes a token, fetches keys that decrypt to the files' contents, assigns and revokes a read
right, and is refused once the token is revoked."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import httpx
import pytest
import pyzipper
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

from kamkeys.demo import DEMO_TOTP_SECRET, ensure_demo_totp
from keyvault.services import store_device_keys
from readrights.models import ReadRight
from tests.factories import DEFAULT_PASSWORD, DeviceFactory, UserFactory, make_super_user

FILE_PASSWORD = "granite lantern orbit 77"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _post_form(http: httpx.Client, path: str, data: dict) -> httpx.Response:
    """Like a browser: read the page for its CSRF token, then post the form."""
    page = http.get(path)
    token = CSRF.search(page.text)
    assert token, f"{path} has a form"
    return http.post(path, data={"csrfmiddlewaretoken": token.group(1), **data})


@pytest.mark.django_db(transaction=True)
def test_a_head_end_uses_a_token_made_on_the_pages_until_it_is_revoked(live_server, org_x):
    super_user = make_super_user(org_x, with_mfa=False, email="erp@distributor-x.example")
    ensure_demo_totp(super_user)
    customer = UserFactory(email="utility@aarhus.example")
    keys = {}
    for number in range(3):
        device = DeviceFactory(owner=org_x)
        keys[device.serial] = bytes([number + 1]) * 16
        store_device_keys(device, {"DEK": keys[device.serial]})

    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=30) as http:
        login = _post_form(
            http, "/accounts/login/", {"login": super_user.email, "password": DEFAULT_PASSWORD}
        )
        assert login.headers["location"] == "/accounts/2fa/authenticate/"
        code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(time.time()) // 30))
        assert _post_form(http, "/accounts/2fa/authenticate/", {"code": code}).status_code == 302
        created = _post_form(
            http,
            "/accounts/api-tokens/",
            {"name": "ERP", "scopes": ["devices:read", "keys:read", "readrights:write"]},
        )
        assert created.status_code == 201
        token = re.search(r'value="(kk_live_[A-Za-z0-9_]+)"', created.text).group(1)

        api = httpx.Client(
            base_url=f"{live_server.url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        listed = api.get("/devices/").json()["results"]
        assert sorted(row["serial"] for row in listed) == sorted(keys)

        with api.stream("POST", "/keys/", json={"serials": sorted(keys)}) as response:
            assert response.status_code == 200
            document = json.loads(b"".join(response.iter_bytes()))
        assert {d["serial"]: bytes.fromhex(d["keys"]["DEK"]) for d in document["devices"]} == keys

        archive_bytes = api.post(
            "/keys/", json={"serials": sorted(keys), "format": "zip", "password": FILE_PASSWORD}
        ).content
        with pyzipper.AESZipFile(io.BytesIO(archive_bytes)) as archive:
            archive.setpassword(FILE_PASSWORD.encode())
            rows = list(csv.DictReader(io.StringIO(archive.read("keys.csv").decode())))
            in_json = json.loads(archive.read("keys.json"))
        assert {row["serial"]: bytes.fromhex(row["key_hex"]) for row in rows} == keys
        assert {d["serial"]: bytes.fromhex(d["keys"]["DEK"]) for d in in_json} == keys

        serial = sorted(keys)[0]
        assigned = api.post(
            "/read-rights/assign/", json={"serials": [serial], "emails": [customer.email]}
        )
        assert assigned.json()["granted"] == {customer.email: 1}
        assert ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).count() == 1
        revoked = api.post(
            "/read-rights/revoke/", json={"serials": [serial], "emails": [customer.email]}
        )
        assert revoked.json()["revoked"] == {customer.email: 1}
        assert not ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).exists()

        token_id = super_user.api_tokens.get().pk
        page = http.get("/accounts/api-tokens/")
        csrf = CSRF.search(page.text).group(1)
        gone = http.post(
            f"/accounts/api-tokens/{token_id}/revoke/", data={"csrfmiddlewaretoken": csrf}
        )
        assert gone.status_code == 302
        refused = api.get("/devices/")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert api.post("/keys/", json={"serials": [serial]}).status_code == 401
        api.close()
