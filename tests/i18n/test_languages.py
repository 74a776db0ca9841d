"""The portal speaks the browser's language until the person chooses one in the header; the
choice is kept on the account and applied at login; emails go out in the recipient's language;
counts use plural forms and dates and numbers the language's formats."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import pyzipper
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from accounts.models import User
from accounts.validators import ZxcvbnStrengthValidator
from keyvault.services import store_device_keys
from tests.factories import DEFAULT_PASSWORD, DeviceFactory, store_selection
from tests.readrights.conftest import outbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db
DANISH = {"HTTP_ACCEPT_LANGUAGE": "da-DK,da;q=0.9,en;q=0.5"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.8"}
DANISH_MONTHS = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
]


def _text(response) -> str:  # noqa: ANN001
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_a_danish_browser_gets_danish_pages_and_an_english_one_english(
    client_for, super_user_x, devices_x
):
    client = client_for(super_user_x)
    danish = client.get("/devices/", **DANISH)
    assert danish["Content-Language"] == "da"
    assert '<html lang="da">' in danish.content.decode()
    text = _text(danish)
    assert "Mine enheder" in text and "Antal enheder i din søgning" in text
    assert "Download fil" in text and "+ Registrer enhed" in text
    english = client.get("/devices/", **ENGLISH)
    assert "My devices" in _text(english) and "Number of devices in your search" in _text(english)


def test_the_login_page_follows_the_browser_before_anyone_chooses(client):
    assert "Log ind" in _text(client.get("/accounts/login/", **DANISH))
    assert "Log in" in _text(client.get("/accounts/login/", **ENGLISH))


def test_choosing_a_language_in_the_header_is_kept_on_the_account_and_applied_at_login(
    client_for, customer
):
    client = client_for(customer)
    chosen = client.post("/accounts/language/", {"language": "da", "next": "/devices/"}, **ENGLISH)
    assert chosen.status_code == 302 and chosen["Location"] == "/devices/"
    customer.refresh_from_db()
    assert customer.language == "da"
    assert "Mine enheder" in _text(client.get("/devices/", **ENGLISH))

    # A new browser (no cookie) that asks for English still gets the account's Danish.
    fresh = Client()
    fresh.post("/accounts/login/", {"login": customer.email, "password": DEFAULT_PASSWORD})
    page = fresh.get("/devices/", **ENGLISH)
    assert "Mine enheder" in _text(page)
    assert page.cookies["kamkeys_language"].value == "da"


def test_an_unknown_language_or_a_foreign_next_address_is_refused_or_ignored(client):
    assert client.post("/accounts/language/", {"language": "xx"}).status_code == 400
    away = client.post("/accounts/language/", {"language": "da", "next": "https://evil.example/"})
    assert away.status_code == 302 and away["Location"] == "/"


def test_emails_go_out_in_the_recipients_language_and_an_invitee_gets_the_inviters(
    client_for,
    super_user_x,
    customer,
    devices_x,
    outbox,  # noqa: F811
):
    User.objects.filter(pk=customer.pk).update(language="da")
    User.objects.filter(pk=super_user_x.pk).update(language="en-gb")
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [d.pk for d in devices_x[:2]])
    data = {
        "emails": f"{customer.email}, ny.kunde@forsyning.example",
        "action": "confirm",
        "device_count": "2",
        "expires_on": "2031-12-31",
    }
    with outbox():
        assert client.post("/read-rights/assign/", data, **DANISH).status_code == 302
    (granted,) = outbox.to(customer.email)
    assert "har givet dig adgang til 2 enheder" in granted.subject
    assert "Din adgang ophører efter 31. december 2031." in granted.body
    assert 'lang="da"' in granted.alternatives[0][0]
    (invited,) = outbox.to("ny.kunde@forsyning.example")
    assert "invites you to the Encryption Key Service" in invited.subject
    assert "gave you read access to the encryption keys of 2 devices" in invited.body


def test_counts_use_plural_forms_in_both_languages(client_for, super_user_x, org_x):
    one = DeviceFactory(owner=org_x)
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [one.pk])
    assert "The keys of the 1 selected device are written" in _text(
        client.get("/devices/download/", **ENGLISH)
    )
    assert "Nøglerne for den 1 valgte enhed skrives" in _text(
        client.get("/devices/download/", **DANISH)
    )
    two = DeviceFactory(owner=org_x)
    store_selection(client, super_user_x, [one.pk, two.pk])
    assert "Nøglerne for de 2 valgte enheder skrives" in _text(
        client.get("/devices/download/", **DANISH)
    )


def test_password_rules_and_zxcvbn_advice_are_danish_for_a_danish_reader():
    with translation.override("da"):
        with pytest.raises(ValidationError) as refused:
            ZxcvbnStrengthValidator().validate("qwerty123")
        message = " ".join(refused.value.messages)
    assert message.startswith("For let at gætte (styrke")
    assert "Dette er en meget almindelig adgangskode." in message  # zxcvbn's advice, in Danish
    assert "Tilføj et ord eller to mere." in message


def test_the_readme_inside_the_zip_is_in_the_language_of_the_download(
    client_for, super_user_x, org_x
):
    device = DeviceFactory(owner=org_x)
    store_device_keys(device, {"DEK": bytes(16)})
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [device.pk])
    password = "Fire ord til én fil 2026!"
    response = client.post(
        "/devices/download/",
        {"format": "zip", "password": password, "password_repeat": password},
        **DANISH,
    )
    with pyzipper.AESZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        archive.setpassword(password.encode())
        readme = archive.read("README.txt").decode()
    assert readme.startswith("kamkeys-nøglefil")
    assert "for 1 enhed, 1 nøgle." in readme


def test_a_danish_visitor_who_registers_gets_the_activation_email_in_danish(client, outbox):  # noqa: F811
    with outbox():
        client.post("/accounts/register/", {"email": "ny@forsyning.example"}, **DANISH)
    (message,) = outbox.to("ny@forsyning.example")
    assert message.subject.endswith("Fuldfør din registrering")
    assert message.body.startswith("Hej,")
    assert "udløber efter 3 dage" in message.body


def test_a_danish_users_token_page_and_token_emails_are_in_danish(
    client_for,
    customer,
    outbox,  # noqa: F811
):
    User.objects.filter(pk=customer.pk).update(language="da")
    expires = timezone.localdate() + timedelta(days=60)
    danish_day = f"{expires.day}. {DANISH_MONTHS[expires.month - 1]} {expires.year}"
    client = client_for(customer)
    page = _text(client.get("/accounts/api-tokens/", **ENGLISH))
    assert "API-tokens" in page and "Du har ingen API-tokens endnu." in page
    assert "Opret API-token" in page and "Create token" not in page
    with outbox():
        created = client.post(
            "/accounts/api-tokens/",
            {
                "name": "Head-end Aarhus",
                "scopes": ["devices:read"],
                "expires_on": expires.isoformat(),
            },
            **ENGLISH,
        )
    assert created.status_code == 201
    assert "Kopiér API-tokenet Head-end Aarhus nu" in _text(created)
    assert f"udløber {danish_day}" in _text(created)
    (message,) = outbox.to(customer.email)
    assert message.subject.endswith(
        'Der er oprettet et nyt API-token "Head-end Aarhus" til din konto'
    )
    assert message.body.startswith("Hej,")
    assert "Der blev oprettet et API-token til din kamkeys-konto fra" in message.body
    assert f"udløber: {danish_day}" in message.body
    assert 'lang="da"' in message.alternatives[0][0]
    refused = client.post("/accounts/api-tokens/", {"name": "", "scopes": []}, **ENGLISH)
    assert refused.status_code == 400 and "Dette felt er påkrævet." in _text(refused)


def test_staff_revoking_a_token_in_the_admin_writes_to_its_owner_in_the_owners_language(
    client_for,
    customer,
    outbox,  # noqa: F811
):
    from api import services
    from tests.factories import make_staff, web

    User.objects.filter(pk=customer.pk).update(language="da")
    customer.refresh_from_db()
    token = services.create_token(
        customer, name="ERP", scopes=["devices:read"], context=web(customer)
    ).token
    staff = make_staff()
    User.objects.filter(pk=staff.pk).update(language="en-gb")
    client = client_for(staff)
    with outbox():
        done = client.post(
            "/admin/api/apitoken/",
            {"action": "revoke", "_selected_action": [token.pk]},
            follow=True,
        )
    assert "1 token revoked." in _text(done)
    (message,) = outbox.to(customer.email)
    assert message.subject.endswith('Dit API-token "ERP" er tilbagekaldt')
    assert "er tilbagekaldt af vores medarbejdere" in message.body


def test_the_paste_limit_is_written_with_the_readers_thousands_separator(client_for, super_user_x):
    client = client_for(super_user_x)
    assert "at most 10,000 at a time" in _text(client.get("/devices/selection/paste/", **ENGLISH))
    danish = _text(client.get("/devices/selection/paste/", **DANISH))
    assert "højst 10.000 ad gangen" in danish
    assert "10,000" not in danish


def test_the_distributor_box_of_request_super_user_access_is_danish_for_a_danish_reader(
    client_for, customer
):
    page = _text(client_for(customer).get("/accounts/request-access/", **DANISH))
    assert "I am a distributor" not in page
    assert "Jeg er distributør og har brug for et superbruger-login" in page
