"""The log-in steps speak the portal's words ("Log in", never the library's "Sign In"), Cancel is
not the primary button, and logging in or finishing a registration shows one banner."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test import Client

from kamkeys.demo import DEMO_TOTP_SECRET, ensure_demo_totp
from tests.accounts.conftest import GOOD_PASSWORD, first_link, mails_to
from tests.factories import DEFAULT_PASSWORD, make_member, make_super_user

pytestmark = pytest.mark.django_db


def _banners(response) -> list[str]:  # noqa: ANN001
    return re.findall(r'<li class="message message-[a-z]+">([^<]*)</li>', response.content.decode())


def test_the_two_factor_step_says_log_in_and_cancel_is_secondary(org_x):
    user = make_super_user(org_x, with_mfa=False, email="two.step@distributor-x.example")
    ensure_demo_totp(user)
    client = Client()
    client.post("/accounts/login/", {"login": user.email, "password": DEFAULT_PASSWORD})
    page = client.get("/accounts/2fa/authenticate/").content.decode()
    assert "<h1>Log in</h1>" in page
    assert "Sign In" not in page and "Two-Factor Authentication" not in page
    assert '<label for="id_code">Authenticator code</label>' in page
    assert re.search(r'<button type="submit">Log in</button>', page)
    cancel = '<button type="submit" form="logout-from-stage" class="secondary">Cancel'
    assert cancel in page

    code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(time.time()) // 30))
    done = client.post("/accounts/2fa/authenticate/", {"code": code}, follow=True)
    assert _banners(done) == [f"You are logged in as {user.email}."]


def test_a_plain_login_shows_one_banner_in_the_portals_words(customer_org):
    user = make_member(customer_org, email="clerk@utility.example")
    done = Client().post(
        "/accounts/login/", {"login": user.email, "password": DEFAULT_PASSWORD}, follow=True
    )
    assert _banners(done) == ["You are logged in as clerk@utility.example."]


def test_finishing_a_registration_shows_one_welcome_banner(client, send):
    send(client.post, "/accounts/register/", {"email": "ada@example.org"}, follow=True)
    link = urlsplit(first_link(mails_to("ada@example.org")[-1], "/register/activate/")).path
    client.get(link)
    done = client.post(
        "/accounts/register/complete/",
        {"name": "Ada", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
        follow=True,
    )
    assert _banners(done) == ["Welcome! Your registration is complete and you are logged in."]
