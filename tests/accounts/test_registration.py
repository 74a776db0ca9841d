"""Email-first registration: neutral answer, activation link, complete, log in."""

from __future__ import annotations

import re
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import identify_hasher
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import User
from kamkeys.models import OutboundEmail
from tests.accounts.conftest import GOOD_PASSWORD, first_link, mails_to

pytestmark = pytest.mark.django_db

REGISTER = "/accounts/register/"
COMPLETE = "/accounts/register/complete/"


def register(client, send, email):  # noqa: ANN001, ANN201
    return send(client.post, REGISTER, {"email": email}, follow=True)


def activation_path(email: str) -> str:
    message = mails_to(email)[-1]
    return urlsplit(first_link(message, "/register/activate/")).path


def test_register_here_page_asks_for_an_email_address(client):
    response = client.get(REGISTER)
    assert response.status_code == 200
    assert b"Email address" in response.content
    assert b">Send<" in response.content


def test_send_answers_the_same_for_known_and_unknown_addresses(client, send, customer):
    unknown = register(client, send, "new.person@example.org")
    known = register(Client(), send, customer.email)
    assert unknown.status_code == known.status_code == 200
    assert unknown.redirect_chain == known.redirect_chain

    def strip(response, email):  # noqa: ANN001, ANN202
        # The email, and the CSRF token of the header's language switch (new for each browser).
        page = response.content.decode().replace(email, "EMAIL")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "TOKEN", page)

    assert strip(unknown, "new.person@example.org") == strip(known, customer.email)


def test_send_creates_no_user_and_emails_an_activation_link_through_the_outbox(client, send):
    register(client, send, "New.Person@Example.org")
    assert not User.objects.filter(email__iexact="new.person@example.org").exists()
    row = OutboundEmail.objects.get(to="new.person@example.org")
    assert row.template == "accounts_activation"
    assert row.status == OutboundEmail.Status.SENT
    (message,) = mails_to("new.person@example.org")
    assert "Complete your registration" in message.subject
    assert "/accounts/register/activate/" in message.body


def test_known_address_gets_you_already_have_an_account_with_a_reset_link(client, send, customer):
    register(client, send, customer.email.upper())
    (message,) = mails_to(customer.email)
    assert "already have an account" in message.subject
    assert "/accounts/password/reset/" in message.body
    assert "/register/activate/" not in message.body


def test_activation_link_opens_complete_registration_on_a_clean_url(client, send):
    register(client, send, "ada@example.org")
    response = client.get(activation_path("ada@example.org"))
    assert response.status_code == 302
    assert response["Location"] == COMPLETE
    page = client.get(COMPLETE)
    assert page.status_code == 200
    assert b"Complete registration" in page.content
    assert b"ada@example.org" in page.content
    assert b"At least 8 characters" in page.content  # the rules are listed


def test_completing_registration_creates_an_active_verified_user_and_logs_in(
    client, send, production_password_hashers
):
    register(client, send, "ada@example.org")
    client.get(activation_path("ada@example.org"))
    session_before = client.session.session_key
    response = client.post(
        COMPLETE,
        {"name": "Ada Ødegård", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.org")
    assert user.is_active and user.name == "Ada Ødegård"
    assert user.check_password(GOOD_PASSWORD)
    assert user.password.startswith("argon2")
    assert not identify_hasher(user.password).must_update(user.password)  # at production cost
    assert EmailAddress.objects.filter(user=user, verified=True, primary=True).count() == 1
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session.session_key != session_before  # rotated on login
    methods = [r["method"] for r in client.session["account_authentication_methods"]]
    assert methods == ["password"]


def test_name_is_optional(client, send):
    register(client, send, "noname@example.org")
    client.get(activation_path("noname@example.org"))
    client.post(COMPLETE, {"name": "", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert User.objects.get(email="noname@example.org").name == ""


def test_a_used_link_shows_link_already_used_with_log_in_and_reset(client, send):
    register(client, send, "ada@example.org")
    path = activation_path("ada@example.org")
    client.get(path)
    client.post(COMPLETE, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    again = Client().get(path)
    assert again.status_code == 400
    assert b"Link already used" in again.content
    assert reverse("account_login").encode() in again.content
    assert reverse("account_reset_password").encode() in again.content
    assert User.objects.filter(email="ada@example.org").count() == 1


def test_an_expired_link_says_so_and_offers_a_new_one(client, settings):
    settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
    with mock.patch("time.time", return_value=time.time() - 3 * 86400 - 60):
        token = services.make_activation_token("late@example.org")
    response = client.get(reverse("accounts:activate", args=[token]))
    assert response.status_code == 400
    assert b"Link expired" in response.content
    assert reverse("accounts:register").encode() in response.content


def test_a_link_just_inside_its_lifetime_still_works(client, settings):
    settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
    with mock.patch("time.time", return_value=time.time() - 3 * 86400 + 120):
        token = services.make_activation_token("ontime@example.org")
    assert client.get(reverse("accounts:activate", args=[token]))["Location"] == COMPLETE


def test_a_tampered_link_is_refused_and_offers_a_new_one(client):
    token = services.make_activation_token("victim@example.org")
    forged = services.make_activation_token("attacker@example.org").split(":")[0]
    tampered = forged + ":" + token.split(":", 1)[1]
    for bad in [tampered, token[:-2] + "xx", "nonsense"]:
        response = client.get(reverse("accounts:activate", args=[bad]))
        assert response.status_code == 400
        assert b"Link not valid" in response.content
    assert not User.objects.exists()


def test_completing_an_expired_link_after_opening_it_creates_nobody(client, send, settings):
    register(client, send, "slow@example.org")
    client.get(activation_path("slow@example.org"))
    settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 0
    with mock.patch("time.time", return_value=time.time() + 10):
        response = client.post(COMPLETE, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert response.status_code == 400
    assert b"Link expired" in response.content
    assert not User.objects.filter(email="slow@example.org").exists()


def test_complete_registration_without_a_link_explains_what_to_do(client):
    response = client.get(COMPLETE)
    assert response.status_code == 400
    assert b"Open the link from your email" in response.content


def test_mismatched_passwords_are_refused_and_nothing_is_created(client, send):
    register(client, send, "ada@example.org")
    client.get(activation_path("ada@example.org"))
    response = client.post(COMPLETE, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD + "x"})
    assert response.status_code == 400
    assert b"The two passwords are not the same." in response.content
    assert not User.objects.filter(email="ada@example.org").exists()


def test_a_weak_password_names_each_failing_rule(client, send):
    register(client, send, "ada@example.org")
    client.get(activation_path("ada@example.org"))
    response = client.post(
        COMPLETE, {"name": "Ada Lovelace", "password1": "lovelace", "password2": "lovelace"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "Contains your name or email address" in content
    assert "Missing an uppercase letter, a digit, a special character" in content
    assert "Too easy to guess" in content
    assert not User.objects.exists()


def test_double_submit_creates_one_user_and_never_fails(client, send):
    register(client, send, "ada@example.org")
    path = activation_path("ada@example.org")
    second = Client()
    client.get(path)
    second.get(path)
    data = {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD}
    first_response = client.post(COMPLETE, data)
    second_response = second.post(COMPLETE, data)
    assert first_response.status_code == 302
    assert second_response.status_code == 400
    assert b"Link already used" in second_response.content
    assert User.objects.filter(email="ada@example.org").count() == 1


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a" * 250 + "@example.org",
        "two@@example.org",
        "",
        "ünïcødé@",
    ],
)
def test_malformed_or_over_long_emails_get_a_clear_message(client, email):
    response = client.post(REGISTER, {"email": email})
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert not OutboundEmail.objects.exists()


def test_unicode_domains_and_names_register(client, send):
    email = "jorgen@æblegård.example"
    register(client, send, email)
    client.get(activation_path(email))
    response = client.post(
        COMPLETE,
        {"name": "Jørgen Æblegård 李", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.get(email=email).name == "Jørgen Æblegård 李"


def test_posts_without_csrf_token_are_refused(send):
    client = Client(enforce_csrf_checks=True)
    assert client.post(REGISTER, {"email": "x@example.org"}).status_code == 403
    assert not OutboundEmail.objects.exists()


def test_repeated_sends_to_one_address_get_the_same_answer_but_limited_mail(client, send):
    for _ in range(5):
        response = register(client, send, "flood@example.org")
        assert response.status_code == 200
        assert b"Check your email" in response.content
    assert len(mails_to("flood@example.org")) == 3


def test_allauth_signup_url_leads_to_register_here(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 302
    assert response["Location"] == REGISTER


def test_logged_in_user_opening_someone_elses_link_is_told_to_log_out_first(client_for, customer):
    token = services.make_activation_token("someone.else@example.org")
    response = client_for(customer).get(reverse("accounts:activate", args=[token]))
    assert response.status_code == 400
    assert b"log out first" in response.content
    assert not User.objects.filter(email="someone.else@example.org").exists()


def test_password_reset_email_goes_through_the_outbox(client, send, customer):
    send(client.post, reverse("account_reset_password"), {"email": customer.email})
    row = OutboundEmail.objects.get(to=customer.email)
    assert row.template == "accounts_allauth"
    (message,) = mails_to(customer.email)
    assert message.subject.startswith("[kamkeys] ")
    assert "/accounts/password/reset/key/" in message.body
    assert mail.outbox[0].alternatives  # html part too


def test_password_check_reports_each_rule_for_live_feedback(client, send):
    register(client, send, "ada@example.org")
    client.get(activation_path("ada@example.org"))
    weak = client.post(reverse("accounts:password_check"), {"password": "ada", "name": ""}).json()
    assert [rule["ok"] for rule in weak["rules"]][:3] == [False, False, False]
    strong = client.post(
        reverse("accounts:password_check"), {"password": GOOD_PASSWORD, "name": "Ada"}
    ).json()
    assert all(rule["ok"] for rule in strong["rules"])


def test_a_unicode_local_part_gets_a_clear_message_not_an_error(client):
    response = client.post(REGISTER, {"email": "jørgen@example.dk"})
    assert response.status_code == 400
    assert b"Enter a valid email address." in response.content


def test_many_sends_from_one_network_are_slowed_down(client, send, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "register": "2/m/ip"}
    for n in range(2):
        assert register(client, send, f"person{n}@example.org").status_code == 200
    response = send(client.post, REGISTER, {"email": "person9@example.org"})
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert not mails_to("person9@example.org")


def test_live_feedback_on_the_invitation_page_checks_the_address_the_page_shows(client):
    """The invitation page has no activation link in the session: the address it shows is sent."""
    password = "Pia.Plant.Skanderborg-2026"
    check = reverse("accounts:password_check")
    without = client.post(check, {"password": password}).json()["rules"]
    with_email = client.post(
        check, {"password": password, "email": "pia.plant@skanderborg.example"}
    ).json()["rules"]
    assert all(rule["ok"] for rule in without)
    assert not all(rule["ok"] for rule in with_email)
