"""Every link in an email opens on KAMKEYS_SITE_URL, whatever Host header the request carried.

An attacker who asks for a password reset of someone else's account with ``Host: evil.example``
must not get a reset link to evil.example into the victim's mailbox (the victim would hand over
the key by clicking it). ``evil.example`` is in ALLOWED_HOSTS here on purpose: an internal alias
or a wildcard host is enough for the Host header to pass Django's check.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from kamkeys import links
from tests.readrights.conftest import select

PUBLIC = "https://keys.example.com"
EVIL = "evil.example"


@pytest.fixture
def public_site(settings):  # noqa: ANN001, ANN201
    settings.KAMKEYS_SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["keys.example.com", EVIL, "testserver"]
    return settings


def links_in(message: mail.EmailMessage) -> list[str]:
    bodies = [message.body] + [alt[0] for alt in getattr(message, "alternatives", [])]
    return [u for body in bodies for u in re.findall(r"https?://[^\s\"<>]+", body)]


def assert_only_public_links(message: mail.EmailMessage, contains: str) -> None:
    urls = links_in(message)
    assert any(contains in u for u in urls), message.body
    for url in urls:
        assert url.startswith(PUBLIC + "/"), url
    assert EVIL not in message.body


@pytest.mark.django_db
def test_unknown_address_reset_mail_links_to_the_public_site(
    public_site, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_HOST=EVIL).post(
            reverse("account_reset_password"), {"email": "nobody@utility.example"}
        )
    for message in mail.outbox:
        for url in links_in(message):
            assert url.startswith(PUBLIC + "/"), url
        assert EVIL not in message.body


@pytest.mark.django_db
def test_activation_link_points_at_the_public_site_despite_a_spoofed_host(
    public_site, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_HOST=EVIL).post(reverse("accounts:register"), {"email": "new@utility.example"})
    (message,) = mail.outbox
    assert_only_public_links(message, "/accounts/register/activate/")


@pytest.mark.django_db
def test_already_registered_mail_links_point_at_the_public_site(
    public_site, customer, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_HOST=EVIL).post(reverse("accounts:register"), {"email": customer.email})
    (message,) = mail.outbox
    assert_only_public_links(message, "/accounts/password/reset/")


@pytest.mark.django_db
def test_invitation_link_points_at_the_public_site_despite_a_spoofed_host(
    public_site, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    from tests.factories import login

    client = login(Client(HTTP_HOST=EVIL), super_user_x)
    select(client, devices_x[:1])
    data = {
        "emails": "invitee@utility.example",
        "expires_on": (date.today() + timedelta(days=30)).isoformat(),
        "message": "",
        "action": "confirm",
        "device_count": "1",
    }
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("readrights:assign"), data)
    assert done.status_code == 302
    (message,) = [m for m in mail.outbox if "invitee@utility.example" in m.to]
    assert_only_public_links(message, "/read-rights/invitation/")


def test_embedded_default_links_follow_the_request_host_else_localhost(settings, rf):
    settings.KAMKEYS_SITE_URL = ""
    request = rf.get("/", HTTP_HOST="127.0.0.1:8000")
    assert links.public_url("/x/", request) == "http://127.0.0.1:8000/x/"
    assert links.public_url("/x/") == "http://localhost:8000/x/"


def test_a_configured_site_url_wins_over_the_request_host(settings, rf):
    settings.KAMKEYS_SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = [EVIL]
    request = rf.get("/", HTTP_HOST=EVIL)
    assert links.public_url("/x/", request) == PUBLIC + "/x/"
    assert links.public_page_url("account_login", request=request) == PUBLIC + "/accounts/login/"


@pytest.mark.django_db
def test_embedded_default_read_rights_emails_link_to_the_host_the_super_user_works_on(
    settings, super_user_x, customer, devices_x, django_capture_on_commit_callbacks
):
    from tests.factories import login

    settings.KAMKEYS_SITE_URL = ""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    client = login(Client(HTTP_HOST="127.0.0.1:8021"), super_user_x)
    select(client, devices_x[:1])
    data = {
        "emails": f"invitee@utility.example {customer.email}",
        "expires_on": "",
        "message": "",
        "action": "confirm",
        "device_count": "1",
    }
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("readrights:assign"), data).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("readrights:revoke"), {"grantee": customer.pk, "scope": "all"})
    assert {m.to[0] for m in mail.outbox} >= {"invitee@utility.example", customer.email}
    for message in mail.outbox:
        urls = links_in(message)
        assert urls, message.body
        for url in urls:
            assert url.startswith("http://127.0.0.1:8021/"), (message.subject, url)
