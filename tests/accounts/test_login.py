"""Log in by email, lockout after repeated failures, admin login, sessions."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test import Client
from django.urls import reverse

from kamkeys.demo import DEMO_TOTP_SECRET, ensure_demo_totp
from tests.accounts.conftest import GOOD_PASSWORD
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def log_in(client, email, password):  # noqa: ANN001, ANN201
    return client.post(LOGIN, {"login": email, "password": password})


def test_login_page_offers_register_here_and_forgot_password(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert reverse("accounts:register").encode() in response.content
    assert b"Register here" in response.content
    assert reverse("account_reset_password").encode() in response.content


def test_customer_logs_in_with_email_in_any_case(client, customer):
    response = log_in(client, customer.email.upper(), DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(customer.pk)


def test_wrong_password_is_refused_with_a_clear_message(client, customer):
    response = log_in(client, customer.email, "Wrong-Password-1!")
    assert response.status_code == 200
    assert b"not correct" in response.content
    assert "_auth_user_id" not in client.session


def test_the_session_key_rotates_on_login(client, customer):
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    log_in(client, customer.email, DEFAULT_PASSWORD)
    assert client.session.session_key != before


def test_repeated_failures_lock_the_account_temporarily(client, customer):
    for _ in range(5):
        log_in(client, customer.email, "Wrong-Password-1!")
    locked = log_in(Client(), customer.email, DEFAULT_PASSWORD)
    assert b"Too many failed login attempts" in locked.content
    assert "_auth_user_id" not in locked.wsgi_request.session


def test_lockout_of_one_account_leaves_others_alone(client, customer, outsider):
    for _ in range(5):
        log_in(client, customer.email, "Wrong-Password-1!")
    assert log_in(Client(), outsider.email, DEFAULT_PASSWORD).status_code == 302


def test_admin_login_page_sends_visitors_to_the_rate_limited_login(client):
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/accounts/user/"
    # Posting credentials to the admin's own login does not authenticate anyone.
    client.post("/admin/login/", {"username": "x@example.org", "password": "y"})
    assert "_auth_user_id" not in client.session


def test_admin_for_anonymous_ends_at_the_allauth_login(client):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_non_staff_user_is_refused_the_admin_without_a_redirect_loop(client_for, customer):
    response = client_for(customer).get("/admin/", follow=True)
    assert response.status_code == 403


def test_staff_log_in_through_allauth_with_their_code_and_reach_the_admin(client, staff_user):
    ensure_demo_totp(staff_user)  # a known secret, to type the code
    response = client.post(
        LOGIN + "?next=/admin/", {"login": staff_user.email, "password": DEFAULT_PASSWORD}
    )
    assert response["Location"] == "/accounts/2fa/authenticate/"  # staff always have TOTP
    code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, int(time.time()) // 30))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_password_change_logs_out_every_session(client_for, customer):
    here = client_for(customer)
    elsewhere = client_for(customer)
    assert elsewhere.get(reverse("accounts:request_access")).status_code == 200
    response = here.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(GOOD_PASSWORD)
    for client in (here, elsewhere):
        assert client.get(reverse("accounts:request_access")).status_code == 302


def test_password_change_applies_the_policy_and_lists_the_rules(client_for, customer):
    client = client_for(customer)
    page = client.get(reverse("account_change_password"))
    assert b"At least 8 characters" in page.content
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": "carla2024", "password2": "carla2024"},
    )
    assert b"Contains your name or email address" in response.content
    assert b"Missing an uppercase letter" in response.content
    customer.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD)


def test_password_reset_applies_the_policy(client, send, customer):
    from tests.accounts.conftest import first_link, mails_to

    send(client.post, reverse("account_reset_password"), {"email": customer.email})
    link = first_link(mails_to(customer.email)[0], "/password/reset/key/")
    form_page = client.get(link, follow=True)
    action = form_page.redirect_chain[-1][0]
    weak = client.post(action, {"password1": "customer", "password2": "customer"})
    assert b"Contains your name or email address" in weak.content
    strong = client.post(action, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert strong.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(GOOD_PASSWORD)


def test_password_reset_logs_out_every_other_session(client, send, client_for, customer):
    from tests.accounts.conftest import first_link, mails_to

    elsewhere = client_for(customer)
    send(client.post, reverse("account_reset_password"), {"email": customer.email})
    link = first_link(mails_to(customer.email)[0], "/password/reset/key/")
    action = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(action, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert elsewhere.get(reverse("accounts:request_access")).status_code == 302


def test_unknown_address_asking_for_a_reset_gets_the_same_answer(client, send, customer):
    known = send(client.post, reverse("account_reset_password"), {"email": customer.email})
    unknown = send(Client().post, reverse("account_reset_password"), {"email": "nobody@x.example"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]


@pytest.mark.django_db
def test_too_many_failed_logins_answer_429_with_the_clear_message(client, customer):
    data = {"login": customer.email, "password": "not-the-password-1!"}
    statuses = [client.post(reverse("account_login"), data).status_code for _ in range(12)]
    assert statuses[0] == 200
    response = client.post(reverse("account_login"), data)
    assert response.status_code == 429
    assert b"Too many failed login attempts" in response.content


@pytest.mark.django_db
def test_every_aria_describedby_on_the_login_page_names_an_element_that_exists(client):
    import re

    page = client.get(reverse("account_login")).content.decode()
    described = [i for ids in re.findall(r'aria-describedby="([^"]+)"', page) for i in ids.split()]
    assert described, "the password box should point at its help text"
    assert [i for i in described if f'id="{i}"' not in page] == []
    assert "Forgot your password?" in page


def test_password_reset_mails_to_one_address_are_limited_whatever_the_sender(send, customer):
    """Nobody can use "Forgot your password?" to flood someone's inbox: as with registration,
    three mails to one address per ten minutes, from however many networks."""
    from tests.accounts.conftest import mails_to

    statuses = [
        send(
            Client(REMOTE_ADDR=f"203.0.113.{number}").post,
            reverse("account_reset_password"),
            {"email": customer.email},
        ).status_code
        for number in range(1, 7)
    ]
    assert len(mails_to(customer.email)) == 3
    assert statuses[:3] == [302, 302, 302]
    assert set(statuses[3:]) == {429}


@pytest.mark.django_db
def test_the_password_reset_pages_lead_back_to_log_in_instead_of_to_a_contact_that_is_not_there(
    client,
):
    form = client.get(reverse("account_reset_password")).content.decode()
    assert "contact us" not in form
    assert f'href="{reverse("account_login")}"' in form
    sent = client.post(reverse("account_reset_password"), {"email": "nobody@utility.example"})
    done = client.get(sent["Location"]).content.decode()
    assert "contact us" not in done
    assert "send it again" in done
    assert f'href="{reverse("account_reset_password")}"' in done
    assert f'href="{reverse("account_login")}"' in done
