"""Two-factor authentication: TOTP log in, the Super User rule for key actions, the demo TOTP."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management import call_command
from django.test import Client

from kamkeys.demo import DEMO_TOTP_SECRET, ensure_demo_totp
from tests.factories import DEFAULT_PASSWORD, login, make_super_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.keyaction_urls")]

GUARDED = "/test-key-action/"


def current_code(secret: str = DEMO_TOTP_SECRET) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_super_user_without_mfa_is_sent_to_set_it_up_before_key_actions(org_x):
    user = make_super_user(org_x, with_mfa=False, email="nomfa@distributor-x.example")
    response = login(Client(), user, mfa=False).get(GUARDED, follow=True)
    assert response.redirect_chain[0][0] == "/accounts/2fa/"
    assert b"must turn on two-factor authentication" in response.content
    assert b"key material" not in response.content


def test_super_user_with_mfa_and_a_fresh_login_may_act(client_for, super_user_x):
    response = client_for(super_user_x).get(GUARDED)
    assert response.status_code == 200


def test_super_user_with_an_old_login_must_reauthenticate(super_user_x):
    client = Client()
    client.force_login(super_user_x)
    response = client.get(GUARDED)
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]


def test_customers_need_no_mfa_for_their_own_key_downloads(client_for, customer):
    assert client_for(customer, mfa=False).get(GUARDED).status_code == 200


def test_the_mfa_rule_can_be_switched_off(settings, org_x):
    settings.KAMKEYS_SUPERUSER_MFA_REQUIRED = False
    user = make_super_user(org_x, with_mfa=False, email="nomfa@distributor-x.example")
    assert login(Client(), user, mfa=False).get(GUARDED).status_code == 200


def test_visitors_are_sent_to_log_in(client):
    response = client.get(GUARDED)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_with_totp_asks_for_the_code_after_the_password(org_x):
    user = make_super_user(org_x, with_mfa=False, email="demo@distributor-x.example")
    ensure_demo_totp(user)
    client = Client()
    response = client.post("/accounts/login/", {"login": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert "_auth_user_id" not in wrong.wsgi_request.session
    client.post("/accounts/2fa/authenticate/", {"code": current_code()})
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.get(GUARDED).status_code == 200


def test_ensure_demo_totp_is_idempotent_and_adds_recovery_codes(org_x):
    user = make_super_user(org_x, with_mfa=False, email="demo@distributor-x.example")
    ensure_demo_totp(user)
    ensure_demo_totp(user)
    types = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    assert types == ["recovery_codes", "totp"]


def test_ensure_demo_totp_refuses_a_secret_that_is_not_base32(org_x):
    user = make_super_user(org_x, with_mfa=False, email="demo@distributor-x.example")
    with pytest.raises(ValueError):
        ensure_demo_totp(user, "not base32 at all!")
    assert not Authenticator.objects.filter(user=user).exists()


def test_demo_totp_code_command_prints_the_current_code(capsys):
    call_command("demo_totp_code")
    out = capsys.readouterr().out
    assert out.split()[0] in {
        current_code(),
        format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(time.time()) // 30 - 1)),
    }


def test_a_super_user_sets_up_totp_and_may_then_act(org_x):
    user = make_super_user(org_x, with_mfa=False, email="new.su@distributor-x.example")
    client = login(Client(), user, mfa=False)
    assert client.get(GUARDED)["Location"] == "/accounts/2fa/"
    activate = "/accounts/2fa/totp/activate/"
    to_reauth = client.get(activate)
    assert "reauthenticate" in to_reauth["Location"]  # allauth asks for the password again
    client.post(to_reauth["Location"], {"password": DEFAULT_PASSWORD})
    page = client.get(activate)
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    client.post(activate, {"code": current_code(secret)})
    assert Authenticator.objects.filter(user=user, type="totp").exists()
    assert client.get(GUARDED).status_code == 200


def test_a_login_older_than_the_reauthentication_timeout_asks_again(client_for, super_user_x):
    client = client_for(super_user_x)
    session = client.session
    records = session["account_authentication_methods"]
    for record in records:
        record["at"] -= 3600
    session["account_authentication_methods"] = records
    session.save()
    assert "reauthenticate" in client.get(GUARDED)["Location"]
