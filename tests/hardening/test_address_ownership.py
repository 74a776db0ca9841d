"""Issue 12 §3: an address nobody verified identifies nobody.

The attack: a logged-in squatter adds the victim's address to their own account. Before the fix
that unverified row made registration answer "you already have an account", sent the victim's
password reset to the squatter's account, let the victim's login name send the squatter's
session a verification, and — once the victim clicked the confirmation link or the squatter made
the address the login — routed every read right and invitation for that address to the squatter.

Only the verified login address of an account (``User.email`` with a verified primary
``EmailAddress``) identifies its owner; ``accounts.selectors.user_for_verified_email`` is the
one rule, and every lookup by address uses it.
"""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from accounts.models import User
from devices.models import Device
from kamkeys.models import OutboundEmail
from kamkeys.outbox import open_context, render
from readrights import services as readrights
from readrights.models import Invitation, ReadRight
from tests.factories import DEFAULT_PASSWORD, UserFactory, login, web

pytestmark = pytest.mark.django_db

VICTIM = "victim@utility.example"


def mails_to(address: str) -> list[OutboundEmail]:
    return list(OutboundEmail.objects.filter(to=address).order_by("pk"))


def body_of(row: OutboundEmail) -> str:
    """The text the recipient reads (allauth's emails are rendered before they are queued)."""
    context = open_context(row.sealed_context)
    if row.template == "accounts_allauth":
        return f"{context['subject']}\n{context['body_text']}"
    subject, text, _html = render(row.template, context)
    return f"{subject}\n{text}"


@pytest.fixture
def squatter(db) -> User:  # noqa: ANN001
    return UserFactory(email="squatter@elsewhere.example", name="Sam Squatter")


def squat(user: User, address: str = VICTIM, *, verified: bool = False) -> EmailAddress:
    """The row the old "add email" page wrote (and that existing databases may still hold)."""
    return EmailAddress.objects.create(user=user, email=address, verified=verified, primary=False)


def reauthenticated(client: Client) -> Client:
    response = client.post(reverse("account_reauthenticate"), {"password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    return client


# --- the way in: adding someone else's address ---------------------------------------------------


def test_adding_someone_elses_address_writes_nothing_and_mails_them_no_link_to_click(squatter):
    client = reauthenticated(login(Client(), squatter))
    client.post(reverse("account_email"), {"email": VICTIM, "action_add": ""})
    assert not EmailAddress.objects.filter(email=VICTIM).exists()
    squatter.refresh_from_db()
    assert squatter.email == "squatter@elsewhere.example"
    for row in mails_to(VICTIM):
        text = body_of(row)
        assert "http" not in text.split("--")[0]  # a code for the asker's window, no link
        assert "ignore" in text.lower()


def test_changing_the_login_address_needs_a_fresh_authentication(squatter):
    client = login(Client(), squatter)  # logged in, but never re-authenticated
    response = client.post(reverse("account_email"), {"email": VICTIM, "action_add": ""})
    assert response.status_code == 302
    assert reverse("account_reauthenticate") in response["Location"]
    assert mails_to(VICTIM) == []


# --- what an unverified address no longer does ----------------------------------------------------


def test_an_address_squatted_on_another_account_does_not_stop_its_owner_registering(squatter):
    squat(squatter)
    Client().post(reverse("accounts:register"), {"email": VICTIM})
    [row] = mails_to(VICTIM)
    assert row.template == "accounts_activation"


def test_a_password_reset_for_a_squatted_address_resets_nobodys_password(squatter):
    squat(squatter)
    Client().post(reverse("account_reset_password"), {"email": VICTIM})
    [row] = mails_to(VICTIM)
    assert "/password/reset/key/" not in body_of(row)


def test_logging_in_with_a_squatted_address_is_refused_and_mails_its_owner_nothing(squatter):
    squat(squatter)
    client = Client()
    credentials = {"login": VICTIM, "password": DEFAULT_PASSWORD}
    response = client.post(reverse("account_login"), credentials)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert mails_to(VICTIM) == []


def test_read_rights_for_an_address_nobody_verified_become_an_invitation(
    super_user_x, devices_x, squatter
):
    # An account whose login address was never verified (an old unverified "make primary").
    EmailAddress.objects.filter(user=squatter).delete()
    User.objects.filter(pk=squatter.pk).update(email=VICTIM)
    EmailAddress.objects.create(user=squatter, email=VICTIM, verified=False, primary=True)
    devices = Device.objects.filter(pk__in=[d.pk for d in devices_x[:2]])
    result = readrights.assign_read_rights(
        devices_qs=devices, emails_in=[VICTIM], context=web(super_user_x)
    )
    assert result.granted == {}
    assert result.invited == {VICTIM: 2}
    assert not ReadRight.objects.filter(grantee=squatter).exists()


def test_the_assign_page_does_not_announce_an_unverified_address_as_an_account(
    client_for, super_user_x, devices_x, squatter
):
    EmailAddress.objects.filter(user=squatter).delete()
    User.objects.filter(pk=squatter.pk).update(email=VICTIM)
    page = client_for(super_user_x).post(
        reverse("readrights:assign"),
        {"device": [str(d.pk) for d in devices_x[:2]], "emails": VICTIM, "action": "review"},
    )
    assert page.status_code == 200
    assert page.context["existing"] == []
    assert page.context["new"] == [VICTIM]


def test_an_invitation_is_never_accepted_into_an_account_whose_address_nobody_verified(
    super_user_x, devices_x, squatter
):
    devices = Device.objects.filter(pk__in=[d.pk for d in devices_x[:2]])
    readrights.assign_read_rights(devices_qs=devices, emails_in=[VICTIM], context=web(super_user_x))
    invitation = Invitation.objects.get(email=VICTIM)
    from tests.hardening.conftest import _token_of

    token = _token_of(invitation)
    # Meanwhile the squatter's login became the victim's address without verification.
    EmailAddress.objects.filter(user=squatter).delete()
    User.objects.filter(pk=squatter.pk).update(email=VICTIM)
    EmailAddress.objects.create(user=squatter, email=VICTIM, verified=False, primary=True)
    # The victim opens the invitation link and accepts.
    victim_browser = Client()
    victim_browser.get(reverse("readrights:invitation", args=[token]))
    victim_browser.post(
        reverse("readrights:accept"),
        {"name": "Vera", "password1": "Quartz-Lantern-47!", "password2": "Quartz-Lantern-47!"},
    )
    assert not ReadRight.objects.filter(grantee=squatter).exists()
    assert not EmailAddress.objects.filter(user=squatter, verified=True, email=VICTIM).exists()


# --- what existing databases hold ----------------------------------------------------------------


def test_addresses_left_over_from_the_old_add_email_page_are_removed(squatter, customer):
    from importlib import import_module

    from django.apps import apps

    clicked = squat(squatter, verified=True)  # the victim once clicked the confirmation
    pending = squat(squatter, "other@utility.example")
    migration = import_module("accounts.migrations.0003_login_address_only")
    migration.remove_secondary_addresses(apps, None)
    assert not EmailAddress.objects.filter(pk__in=[clicked.pk, pending.pk]).exists()
    assert EmailAddress.objects.filter(user=squatter, email=squatter.email, verified=True).exists()
    assert EmailAddress.objects.filter(user=customer, verified=True, primary=True).count() == 1
    # …so the squatter cannot make the victim's address their login any more.
    client = reauthenticated(login(Client(), squatter))
    client.post(reverse("account_email"), {"email": VICTIM, "action_primary": ""})
    squatter.refresh_from_db()
    assert squatter.email == "squatter@elsewhere.example"
