"""Attacks with request headers the client chooses: Host and X-Forwarded-For.

- A spoofed Host header must not put the attacker's server into a password-reset email (the
  victim would hand over the reset key by clicking it). evil.example is in ALLOWED_HOSTS on
  purpose: an internal alias or a wildcard is enough for a Host header to pass Django's check.
- Behind our one proxy, a forged leftmost X-Forwarded-For entry must neither change the address
  the audit log records nor escape the per-client login rate limit, and clients behind the same
  proxy must not share one limit.
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit import services as audit
from audit.context import AuditContext
from audit.models import AuditEvent
from tests.kamkeys.test_client_address import ALICE, BOB, through_proxy
from tests.kamkeys.test_public_links import EVIL, PUBLIC, assert_only_public_links


@pytest.fixture
def public_site(settings):  # noqa: ANN001, ANN201
    settings.KAMKEYS_SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["keys.example.com", EVIL, "testserver"]
    return settings


@pytest.mark.django_db
def test_password_reset_link_points_at_the_public_site_despite_a_spoofed_host(
    public_site, customer, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_HOST=EVIL).post(reverse("account_reset_password"), {"email": customer.email})
    (message,) = [m for m in mail.outbox if customer.email in m.to]
    assert_only_public_links(message, "/accounts/password/reset/key/")


@pytest.mark.django_db
def test_the_audit_log_records_the_real_client_not_the_proxy_or_a_forged_address(
    settings, rf, super_user_x
):
    settings.KAMKEYS_TRUSTED_PROXY_COUNT = 1
    request = rf.post("/devices/download/", **through_proxy(ALICE, forged="6.6.6.6"))
    request.user = super_user_x
    audit.record("download", context=AuditContext.from_request(request), object_type="device")
    assert AuditEvent.objects.get(action="download").ip == ALICE


def fail_login(ip: str, n: int, forged: str = "") -> bytes:
    client = Client(**through_proxy(ip, forged=forged))
    response = client.post(
        reverse("account_login"), {"login": f"someone{n}@utility.example", "password": "Wrong-1!"}
    )
    return response.content


@pytest.mark.django_db
def test_login_rate_limit_counts_each_client_behind_the_proxy_separately(settings):
    settings.KAMKEYS_TRUSTED_PROXY_COUNT = settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    # Alice fails ten times with different addresses (the per-IP limit, 10 a minute) …
    for n in range(10):
        assert b"Too many failed login attempts" not in fail_login(ALICE, n)
    # … so her next try is refused, even with a made-up leftmost X-Forwarded-For …
    assert b"Too many failed login attempts" in fail_login(ALICE, 10, forged="6.6.6.6")
    # … while Bob, behind the same proxy, is not locked out with her.
    assert b"Too many failed login attempts" not in fail_login(BOB, 11)


@pytest.mark.django_db
def test_a_short_forwarded_for_header_is_a_refused_login_not_a_server_error(settings):
    """Behind two proxies a request that skipped one carries a single X-Forwarded-For entry;
    allauth's own reading of the header raised ImproperlyConfigured there (a 500 on login)."""
    settings.KAMKEYS_TRUSTED_PROXY_COUNT = settings.ALLAUTH_TRUSTED_PROXY_COUNT = 2
    client = Client(**through_proxy(ALICE), raise_request_exception=False)
    response = client.post(
        reverse("account_login"), {"login": "someone@utility.example", "password": "Wrong-1!"}
    )
    assert response.status_code == 200
    assert b"not correct" in response.content or b"incorrect" in response.content.lower()
