"""Download file: the selection's keys in an encrypted ZIP or KEM, behind MFA + reauth."""

from __future__ import annotations

import io
import time

import pytest
import pyzipper

from audit.models import AuditEvent
from keyvault.services import store_device_keys
from readrights.models import ReadRight
from tests.factories import DeviceFactory

URL = "/devices/download/"
SELECTION = "/devices/selection/"
PASSWORD = "Meter keys travel safely 2026!"


@pytest.fixture
def keyed_x(org_x):  # noqa: ANN001, ANN201
    devices = [
        DeviceFactory(owner=org_x, serial="63001468"),
        DeviceFactory(owner=org_x, serial="63001634"),
        DeviceFactory(owner=org_x, serial="63009999"),
    ]
    for i, device in enumerate(devices):
        store_device_keys(device, {"DEK": bytes([i + 1]) * 16})
    return devices


def _select(client, devices) -> None:  # noqa: ANN001
    client.post(SELECTION, {"action": "select", "device": [d.pk for d in devices]})


def _body(response) -> bytes:  # noqa: ANN001
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_super_user_downloads_the_selected_keys_as_an_encrypted_zip(
    client_for, super_user_x, keyed_x
):
    client = client_for(super_user_x)
    _select(client, keyed_x[:2])
    page = client.get(URL)
    assert page.status_code == 200
    assert "7-Zip" in page.content.decode()
    response = client.post(
        URL, {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
    with pyzipper.AESZipFile(io.BytesIO(_body(response))) as archive:
        archive.setpassword(PASSWORD.encode())
        csv_text = archive.read("keys.csv").decode()
    assert "63001468" in csv_text and "63001634" in csv_text
    assert "63009999" not in csv_text
    assert ("01" * 16) in csv_text
    event = AuditEvent.objects.get(action="download")
    assert event.count == 2 and event.actor == super_user_x
    assert client.get("/devices/").context["selected_count"] == 2  # the selection is kept


@pytest.mark.django_db
def test_a_kem_download_is_a_plain_zip_with_one_kem_member(client_for, super_user_x, keyed_x):
    client = client_for(super_user_x)
    _select(client, keyed_x[:1])
    response = client.post(
        URL, {"format": "kem", "password": "Kem-Pass-2026", "password_repeat": "Kem-Pass-2026"}
    )
    assert response.status_code == 200
    with pyzipper.ZipFile(io.BytesIO(_body(response))) as archive:
        names = archive.namelist()
    assert len(names) == 1 and names[0].endswith(".kem")


@pytest.mark.django_db
def test_customer_downloads_only_devices_it_may_read(client_for, customer, super_user_x, keyed_x):
    ReadRight.objects.create(device=keyed_x[0], grantee=customer, granted_by=super_user_x)
    client = client_for(customer, mfa=False)
    _select(client, keyed_x)  # two of them are not visible: ignored
    response = client.post(
        URL, {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD}
    )
    with pyzipper.AESZipFile(io.BytesIO(_body(response))) as archive:
        archive.setpassword(PASSWORD.encode())
        csv_text = archive.read("keys.csv").decode()
    assert "63001468" in csv_text and "63001634" not in csv_text


@pytest.mark.django_db
def test_bad_passwords_are_explained_and_nothing_is_disclosed(client_for, super_user_x, keyed_x):
    client = client_for(super_user_x)
    _select(client, keyed_x[:1])
    short = client.post(URL, {"format": "zip", "password": "abc", "password_repeat": "abc"})
    assert short.status_code == 400
    differ = client.post(URL, {"format": "zip", "password": PASSWORD, "password_repeat": "x"})
    assert differ.status_code == 400
    assert "The two passwords differ." in differ.content.decode()
    bad_format = client.post(URL, {"format": "exe", "password": PASSWORD})
    assert bad_format.status_code == 400
    assert not AuditEvent.objects.filter(action="download").exists()
    assert PASSWORD not in differ.content.decode()


@pytest.mark.django_db
def test_an_empty_selection_is_sent_back_with_a_message(client_for, super_user_x, keyed_x):
    client = client_for(super_user_x)
    response = client.get(URL)
    assert response.status_code == 302
    messages = [str(m) for m in client.get("/devices/").context["messages"]]
    assert any("No devices are selected" in m and "Download file" in m for m in messages)


@pytest.mark.django_db
def test_super_user_without_two_factor_is_sent_to_set_it_up(client_for, org_x, keyed_x):
    from tests.factories import make_super_user, store_selection

    user = make_super_user(org_x, with_mfa=False)
    client = client_for(user, mfa=False)
    store_selection(client, user, [device.pk for device in keyed_x])
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/2fa/" in response["Location"]


@pytest.mark.django_db
def test_a_stale_login_must_reauthenticate_first(client_for, super_user_x, keyed_x):
    client = client_for(super_user_x)
    session = client.session
    old = time.time() - 3600
    for record in session["account_authentication_methods"]:
        record["at"] = old
    session.save()
    _select(client, keyed_x[:1])
    response = client.get(URL)
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]


@pytest.mark.django_db
def test_a_stale_login_sending_the_form_is_asked_to_reauthenticate_without_storing_the_password(
    client_for, super_user_x, keyed_x
):
    """allauth keeps a POST it will replay after the re-authentication in the session, that is
    in the database until the user is done: the file password was stored there."""
    from urllib.parse import quote_plus

    from django.contrib.sessions.models import Session

    client = client_for(super_user_x)
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] = time.time() - 3600
    session.save()
    _select(client, keyed_x[:1])
    response = client.post(
        URL, {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD}
    )
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"] and "download" in response["Location"]
    from kamkeys.sessions import SessionStore

    for stored in Session.objects.all():
        decoded = repr(SessionStore().decode(stored.session_data))
        assert decoded != "{}"
        assert PASSWORD not in decoded and quote_plus(PASSWORD) not in decoded
    page = client.get(response["Location"]).content.decode()
    assert "file password again" in page


@pytest.mark.django_db
def test_anonymous_visitor_cannot_download(client):
    response = client.post(URL, {"format": "zip", "password": PASSWORD})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_a_tampered_stored_key_refuses_the_whole_file_with_a_clear_message(
    client_for, super_user_x, keyed_x
):
    from keyvault.models import DeviceKey

    stored = DeviceKey.objects.get(device=keyed_x[1], name="DEK")
    wrapped = bytearray(stored.wrapped)
    wrapped[3] ^= 0xFF
    DeviceKey.objects.filter(pk=stored.pk).update(wrapped=bytes(wrapped))
    client = client_for(super_user_x)
    _select(client, keyed_x[:2])
    response = client.post(
        URL, {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD}
    )
    assert response.status_code == 409
    assert "integrity check" in response.content.decode()
    assert "Content-Disposition" not in response
    assert AuditEvent.objects.filter(action="unwrap_failed").exists()


@pytest.mark.django_db
def test_the_file_tells_its_page_it_was_made_with_name_and_count_but_no_secret(
    client_for, super_user_x, keyed_x
):
    client = client_for(super_user_x)
    _select(client, keyed_x[:2])
    response = client.post(
        URL,
        {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD, "notice": "ab12" * 4},
    )
    assert response.status_code == 200
    filename = response["Content-Disposition"].split('"')[1]
    made = response.cookies["kamkeys_download_made"]
    assert made.value == f"{'ab12' * 4}.2.{filename}"
    assert made["path"] == URL and made["samesite"] == "Strict" and not made["httponly"]
    assert PASSWORD not in made.OutputString()


@pytest.mark.django_db
def test_a_forged_notice_token_is_refused_before_any_file(client_for, super_user_x, keyed_x):
    client = client_for(super_user_x)
    _select(client, keyed_x[:2])
    response = client.post(
        URL,
        {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD, "notice": "a;b=c"},
    )
    assert response.status_code == 400
    assert "kamkeys_download_made" not in response.cookies


@pytest.mark.django_db
def test_the_format_help_says_once_what_opens_a_zip_and_how_long_a_kem_password_is(
    client_for, super_user_x, keyed_x
):
    client = client_for(super_user_x)
    _select(client, keyed_x[:1])
    content = client.get(URL).content.decode()
    assert content.count("built-in zip extractor cannot open AES-encrypted archives") == 1
    assert "those 16 characters" not in content
    assert "so it is only as strong as that password of at most 16 characters" in content
