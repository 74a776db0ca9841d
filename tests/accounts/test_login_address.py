"""One address per account: which user an address identifies, how it changes, staff-made logins."""

from __future__ import annotations

import re
from importlib import import_module

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.selectors import user_for_verified_email, users_with_verified_emails
from devices.models import Device
from kamkeys.models import OutboundEmail
from kamkeys.outbox import open_context
from readrights import services as readrights
from readrights.models import Invitation
from tests.factories import DEFAULT_PASSWORD, UserFactory, login, web

pytestmark = pytest.mark.django_db


def allauth_mails_to(address: str) -> list[dict[str, str]]:
    rows = OutboundEmail.objects.filter(to=address, template="accounts_allauth").order_by("pk")
    return [open_context(row.sealed_context) for row in rows]


def code_in(mail: dict[str, str]) -> str:
    return re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mail["body_text"], re.M).group(1)


def unverified_login(email: str) -> User:
    """An account whose login nobody proved (staff changed it, or an old database)."""
    user = UserFactory(email=email)
    EmailAddress.objects.filter(user=user).update(verified=False)
    return user


# --- the rule ---------------------------------------------------------------------------------


def test_a_verified_login_address_identifies_its_account_whatever_the_case(customer):
    assert user_for_verified_email("Customer@Utility.Example ") == customer
    assert list(users_with_verified_emails(["CUSTOMER@utility.example", "x@y.example"])) == [
        customer
    ]


def test_an_unverified_login_or_an_extra_address_identifies_nobody(customer):
    unverified_login("unproven@utility.example")
    EmailAddress.objects.create(user=customer, email="extra@utility.example", verified=True)
    assert user_for_verified_email("unproven@utility.example") is None
    assert user_for_verified_email("extra@utility.example") is None
    assert user_for_verified_email("") is None


# --- changing the address -----------------------------------------------------------------------


def test_the_email_page_offers_one_address_to_change(client_for, customer):
    page = client_for(customer).get(reverse("account_email"))
    assert page.status_code == 200
    assert customer.email.encode() in page.content
    assert b"action_add" in page.content


@pytest.mark.parametrize("other_verified", [True, False])
def test_changing_to_another_accounts_login_changes_nothing(customer, other_verified):
    other = UserFactory(email="taken@utility.example")
    if not other_verified:
        EmailAddress.objects.filter(user=other).update(verified=False)
    client = login(Client(), customer)
    client.post(reverse("account_reauthenticate"), {"password": DEFAULT_PASSWORD})
    client.post(reverse("account_email"), {"email": other.email, "action_add": ""})
    [mail] = allauth_mails_to(other.email)
    response = client.post(reverse("account_email_verification_sent"), {"code": code_in(mail)})
    assert response.status_code < 500
    customer.refresh_from_db()
    other.refresh_from_db()
    assert customer.email == "customer@utility.example"
    assert other.email == "taken@utility.example"
    assert user_for_verified_email("customer@utility.example") == customer


# --- logins nobody has proved yet ---------------------------------------------------------------


def test_an_unverified_login_logs_in_only_after_typing_the_code_sent_to_it(db):  # noqa: ANN001
    user = unverified_login("operator@manufacturer.example")
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    [mail] = allauth_mails_to(user.email)
    client.post(reverse("account_email_verification_sent"), {"code": code_in(mail)})
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user_for_verified_email(user.email) == user


def test_staff_made_accounts_are_found_by_forgot_password(client_for, staff_user):
    client_for(staff_user).post(
        "/admin/accounts/user/add/",
        {"email": "New.Staff@Manufacturer.example", "name": "New", "is_active": "on"},
    )
    user = User.objects.get(email="new.staff@manufacturer.example")
    assert user_for_verified_email("new.staff@manufacturer.example") == user
    Client().post(reverse("account_reset_password"), {"email": user.email})
    [mail] = allauth_mails_to(user.email)
    assert "/password/reset/key/" in mail["body_text"]


def test_the_migration_records_logins_staff_made_before_as_verified(db):  # noqa: ANN001
    user = User.objects.create_user("old.staff@manufacturer.example", DEFAULT_PASSWORD)
    migration = import_module("accounts.migrations.0003_login_address_only")
    migration.record_staff_made_logins(apps, None)
    assert user_for_verified_email(user.email) == user


# --- invitations --------------------------------------------------------------------------------


def test_an_invitation_to_an_unverified_login_explains_how_to_confirm_it(super_user_x, devices_x):
    from tests.hardening.conftest import _token_of

    devices = Device.objects.filter(pk__in=[d.pk for d in devices_x[:1]])
    readrights.assign_read_rights(
        devices_qs=devices, emails_in=["late@utility.example"], context=web(super_user_x)
    )
    token = _token_of(Invitation.objects.get())
    unverified_login("late@utility.example")
    client = Client()
    client.get(reverse("readrights:invitation", args=[token]))
    page = client.get(reverse("readrights:accept"))
    assert page.status_code == 409
    assert b"never confirmed" in page.content
