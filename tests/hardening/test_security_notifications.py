"""Issue 12 §5: people hear about changes to their own security.

Whoever changes a password, the login address or the second factor of an account — its owner,
or someone with a stolen session — the owner gets exactly one notice at the address they had,
through the outbox, and the notice carries no password, code, secret or link token. Before the
fix none of these changes sent anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.test import Client
from django.urls import reverse

from accounts.models import User
from kamkeys.models import OutboundEmail
from kamkeys.outbox import open_context
from tests.factories import DEFAULT_PASSWORD, UserFactory, login

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Quartz-Lantern-Meadow-47!"
NEW_ADDRESS = "carla.new@utility.example"


@pytest.fixture
def carla(db) -> User:  # noqa: ANN001
    return UserFactory(email="carla@utility.example", name="Carla Customer")


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable[..., Any]:  # noqa: ANN001
    """Run a request and then its on-commit work (allauth sends MFA notices on commit)."""

    def run(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return method(*args, **kwargs)

    return run


def notices_to(address: str) -> list[dict[str, str]]:
    """The emails queued for an address, as the recipient reads them."""
    rows = OutboundEmail.objects.filter(to=address, template="accounts_allauth").order_by("pk")
    return [open_context(row.sealed_context) for row in rows]


def the_one_notice(address: str, subject: str, *secrets: str, advice: str = "reset") -> str:
    [notice] = notices_to(address)
    assert subject in notice["subject"]
    text = notice["subject"] + notice["body_text"] + notice["body_html"]
    for secret in secrets:
        assert secret not in text
    assert "/password/reset/key/" not in text
    assert advice in notice["body_text"].lower()  # what to do if it was not them
    return notice["body_text"]


def reauthenticated(client: Client) -> Client:
    response = client.post(reverse("account_reauthenticate"), {"password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    return client


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


@pytest.fixture
def outbox_cleared() -> Iterator[None]:
    OutboundEmail.objects.all().delete()
    yield


# --- password ---------------------------------------------------------------------------------


def test_changing_the_password_tells_the_owner_once_without_the_password(carla, committed):
    client = login(Client(), carla)
    committed(
        client.post,
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    carla.refresh_from_db()
    assert carla.check_password(NEW_PASSWORD)
    the_one_notice(carla.email, "Your password was changed", NEW_PASSWORD, DEFAULT_PASSWORD)


def test_resetting_the_password_tells_the_owner_once_after_the_reset(carla, committed):
    client = Client()
    committed(client.post, reverse("account_reset_password"), {"email": carla.email})
    [link_email] = notices_to(carla.email)
    link = re.search(r"https?://\S+/password/reset/key/\S+", link_email["body_text"]).group(0)
    OutboundEmail.objects.all().delete()
    action = client.get(link, follow=True).redirect_chain[-1][0]
    committed(client.post, action, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    carla.refresh_from_db()
    assert carla.check_password(NEW_PASSWORD)
    the_one_notice(carla.email, "Your password was reset", NEW_PASSWORD)


# --- the login address ------------------------------------------------------------------------


def test_changing_the_login_address_tells_the_old_address_once(carla, committed):
    from accounts.selectors import user_for_verified_email

    old = carla.email
    client = reauthenticated(login(Client(), carla))
    committed(client.post, reverse("account_email"), {"email": NEW_ADDRESS, "action_add": ""})
    [code_email] = notices_to(NEW_ADDRESS)
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", code_email["body_text"], re.M).group(1)
    assert notices_to(old) == []  # nothing changed yet
    committed(client.post, reverse("account_email_verification_sent"), {"code": code})

    carla.refresh_from_db()
    assert carla.email == NEW_ADDRESS
    assert user_for_verified_email(NEW_ADDRESS) == carla
    assert user_for_verified_email(old) is None
    assert list(EmailAddress.objects.filter(user=carla).values_list("email", flat=True)) == [
        NEW_ADDRESS
    ]
    body = the_one_notice(old, "Your login address was changed", code, advice="taken over")
    assert NEW_ADDRESS in body
    assert len(notices_to(NEW_ADDRESS)) == 1  # just the code


# --- second factor ----------------------------------------------------------------------------


def test_turning_on_an_authenticator_app_tells_the_owner_once_without_secrets(carla, committed):
    client = reauthenticated(login(Client(), carla, mfa=False))
    activate = reverse("mfa_activate_totp")
    assert client.get(activate).status_code == 200
    secret = client.session["mfa.totp.secret"]
    committed(client.post, activate, {"code": totp_code(secret)})
    assert Authenticator.objects.filter(user=carla, type="totp").exists()
    codes = RecoveryCodes(
        Authenticator.objects.get(user=carla, type="recovery_codes")
    ).get_unused_codes()
    the_one_notice(carla.email, "Two-factor authentication was turned on", secret, *codes)


def test_turning_off_the_authenticator_app_tells_the_owner_once(carla, committed):
    TOTP.activate(carla, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    RecoveryCodes.activate(carla)
    client = reauthenticated(login(Client(), carla))
    committed(client.post, reverse("mfa_deactivate_totp"))
    assert not Authenticator.objects.filter(user=carla, type="totp").exists()
    the_one_notice(carla.email, "Two-factor authentication was turned off")


def test_new_recovery_codes_tell_the_owner_once_and_are_never_emailed(carla, committed):
    TOTP.activate(carla, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    RecoveryCodes.activate(carla)
    client = reauthenticated(login(Client(), carla))
    committed(client.post, reverse("mfa_generate_recovery_codes"))
    codes = RecoveryCodes(
        Authenticator.objects.get(user=carla, type="recovery_codes")
    ).get_unused_codes()
    the_one_notice(carla.email, "New recovery codes were made", *codes)
