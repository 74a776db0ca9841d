"""Issue 12 §4: a customer who registers a distributor's device with serial + device code.

The attack: a customer reads the serial and the 2-digit device code off a meter (or a delivery
note) and adds the meter to their own list with "+ Register device". On the starting code that
registration kept the keys within the customer's reach for ever, and the distributor owning the
meter could neither see it (not in User Administration, not in the "Customers" column of My
devices) nor end it. Here the owner's Super User sees it, ends it, and from that moment the
customer sees nothing of the device on any page, count or download, cannot quietly register it
again with the same code, and is told by email.
"""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from audit.models import AuditEvent
from devices.access import visible_devices
from devices.device_codes import hash_device_code
from devices.models import Device, DeviceRegistration, RegistrationAttempt
from keyvault.services import store_device_keys
from readrights.models import ReadRight
from tests.factories import DeviceFactory, UserFactory, login, make_super_user

SERIAL = "63001468"
CODE = "42"
PASSWORD = "granite lantern orbit 77"
USER_ADMIN = "/read-rights/users/"


@pytest.fixture
def meter(org_x) -> Device:  # noqa: ANN001
    """A keyed meter of distributor X, with the device code printed on its label."""
    device = DeviceFactory(
        owner=org_x, serial=SERIAL, device_code_hash=hash_device_code(SERIAL, CODE)
    )
    store_device_keys(device, {"DEK": bytes(range(16))})
    return device


@pytest.fixture
def registered(client_for, customer, meter) -> Client:  # noqa: ANN001
    """The attack itself: the customer registers X's meter with serial + device code."""
    client = client_for(customer)
    response = client.post(reverse("devices:register"), {"serial": SERIAL, "code": CODE})
    assert response.status_code == 302
    assert meter in visible_devices(customer)
    assert SERIAL in client.get(reverse("devices:list")).content.decode()  # and the message read
    return client


def _registration(customer, meter) -> DeviceRegistration:  # noqa: ANN001
    return DeviceRegistration.objects.get(user=customer, device=meter)


def _end(client: Client, registration: DeviceRegistration) -> object:
    url = reverse("readrights:end_registration", args=[registration.pk])
    return client.post(url, {"next": "user_admin"})


def _customers_cell(client: Client, meter: Device) -> str:
    """What the "Customers" cell of the meter's row in My devices shows."""
    response = client.get(reverse("devices:list"), {"serial": meter.serial})
    assert response.status_code == 200
    row = re.search(
        rf'<tr data-device="{meter.pk}"[^>]*>.*?<td class="readers">([^<]*)</td>',
        response.content.decode(),
        re.S,
    )
    assert row, "the meter's row shows a Customers cell"
    return row.group(1)


def _forged_download(client: Client, meter: Device) -> object:
    """A stale or forged selection naming the device, then Download file."""
    session = client.session
    session["devices_selection"] = {"ids": [meter.pk], "searches": [], "excluded": []}
    session.save()
    return client.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD},
    )


@pytest.mark.django_db
def test_the_owners_super_user_sees_who_registered_their_device_and_when(
    registered, client_for, super_user_x, customer, meter
):
    page = client_for(super_user_x).get(USER_ADMIN)
    assert page.status_code == 200
    body = page.content.decode()
    assert customer.email in body
    assert SERIAL in body
    when = timezone.localtime(_registration(customer, meter).created_at)
    assert date_format(when, "j M Y") in body
    assert reverse("readrights:end_registration", args=[_registration(customer, meter).pk]) in body


@pytest.mark.django_db
def test_a_self_registered_customer_counts_in_the_customers_column(
    registered, client_for, super_user_x, customer, meter
):
    client = client_for(super_user_x)
    assert _customers_cell(client, meter) == "1"
    # A customer who also holds a read right on the device is one customer, not two.
    ReadRight.objects.create(device=meter, grantee=customer, granted_by=super_user_x)
    other = UserFactory(email="second.reader@utility.example")
    ReadRight.objects.create(device=meter, grantee=other, granted_by=super_user_x)
    assert _customers_cell(client, meter) == "2"


@pytest.mark.django_db
def test_the_owner_ends_a_registration_and_the_customer_loses_the_device_everywhere_at_once(
    registered, client_for, super_user_x, customer, meter, django_capture_on_commit_callbacks
):
    customer_client = registered
    registration = _registration(customer, meter)
    owner = client_for(super_user_x)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = _end(owner, registration)
    assert response.status_code == 302
    assert response["Location"] == reverse("readrights:user_admin")

    # Gone from every page, count and download.
    assert not visible_devices(customer).exists()
    listed = customer_client.get(reverse("devices:list"))
    assert SERIAL not in listed.content.decode()
    assert listed.context["total"] == 0
    downloads_before = AuditEvent.objects.filter(action="download").count()
    forged = _forged_download(customer_client, meter)
    assert forged.status_code == 302 and not getattr(forged, "streaming", False)
    assert AuditEvent.objects.filter(action="download").count() == downloads_before
    told = owner.get(response["Location"]).content.decode()  # the confirmation, read once
    assert f"{customer.email} no longer has access to device {SERIAL}" in told
    assert customer.email not in owner.get(USER_ADMIN).content.decode()
    assert _customers_cell(owner, meter) == ""

    # The row stays for the audit trail, marked as ended by whom.
    registration.refresh_from_db()
    assert registration.ended_at is not None and registration.ended_by == super_user_x
    event = AuditEvent.objects.get(action="device.registration_end")
    assert event.actor == super_user_x and event.object_ids == [meter.pk]
    assert event.detail["user"] == customer.email

    # The customer was told, with a link and no key.
    [message] = [m for m in mail.outbox if customer.email in m.to]
    assert "Distributor X A/S" in message.subject
    assert SERIAL in message.body and "/devices/" in message.body
    assert bytes(range(16)).hex() not in message.body.lower()


@pytest.mark.django_db
def test_a_customer_whose_registration_was_ended_cannot_register_the_device_again_with_the_code(
    registered, client_for, super_user_x, customer, meter
):
    _end(client_for(super_user_x), _registration(customer, meter))
    again = registered.post(reverse("devices:register"), {"serial": SERIAL, "code": CODE})
    assert again.status_code == 403
    assert "ended your registration" in again.content.decode()
    refused = AuditEvent.objects.filter(action="device.register", actor=customer).latest("pk")
    assert refused.outcome == "refused" and refused.detail["serial"] == SERIAL
    assert not visible_devices(customer).exists()
    assert _registration(customer, meter).ended_at is not None


@pytest.mark.django_db
def test_a_customer_whose_registration_was_ended_cannot_come_back_through_a_second_account(
    registered, client_for, super_user_x, customer, meter
):
    """Attack: the ended customer opens another account (any address they read) and registers
    the meter again with the code they know. Before, that account got the device and its keys:
    the end was only for the first account. Now the code registers the device for nobody once
    its owner has ended a registration of it; the owner can give a read right."""
    _end(client_for(super_user_x), _registration(customer, meter))
    second = UserFactory(email="same.person.again@utility.example")
    again = client_for(second).post(reverse("devices:register"), {"serial": SERIAL, "code": CODE})
    assert again.status_code == 403
    assert "its code no longer adds it to" in again.content.decode()
    assert meter not in visible_devices(second)
    refused = AuditEvent.objects.filter(action="device.register", actor=second).latest("pk")
    assert refused.outcome == "refused" and refused.detail["serial"] == SERIAL
    # Not counted as a failure: the code was right, and guessing limits stay for guesses.
    assert RegistrationAttempt.objects.get(user=second).outcome == "closed"


@pytest.mark.django_db
def test_a_foreign_super_user_can_neither_see_nor_end_the_registration(
    registered, client_for, super_user_x, super_user_y, customer, meter
):
    foreign = client_for(super_user_y)
    assert customer.email not in foreign.get(USER_ADMIN).content.decode()
    response = _end(foreign, _registration(customer, meter))
    assert response.status_code == 404
    assert customer.email not in response.content.decode()
    assert SERIAL not in response.content.decode()
    missing = foreign.post(reverse("readrights:end_registration", args=[987654]))
    assert missing.status_code == 404
    assert _registration(customer, meter).ended_at is None
    assert meter in visible_devices(customer)


@pytest.mark.django_db
def test_a_customer_cannot_end_registrations_not_even_their_own(
    registered, client_for, customer, meter, outsider
):
    registration = _registration(customer, meter)
    assert _end(registered, registration).status_code == 403
    assert _end(client_for(outsider), registration).status_code == 403
    assert _end(Client(), registration).status_code == 302  # to the login page
    assert registration.pk == _registration(customer, meter).pk
    assert _registration(customer, meter).ended_at is None


@pytest.mark.django_db
def test_ending_a_registration_needs_two_factor_and_a_recent_authentication(
    registered, client, org_x, super_user_x, customer, meter, settings
):
    registration = _registration(customer, meter)
    no_mfa = make_super_user(org_x, email="nomfa@distributor-x.example", with_mfa=False)
    response = _end(login(Client(), no_mfa, mfa=False), registration)
    assert response["Location"] == reverse("mfa_index")
    stale = login(Client(), super_user_x)
    session = stale.session
    for record in session["account_authentication_methods"]:
        record["at"] = time.time() - 3600
    session.save()
    response = _end(stale, registration)
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert _registration(customer, meter).ended_at is None
    url = reverse("readrights:end_registration", args=[registration.pk])
    assert stale.get(url).status_code == 405


@pytest.mark.django_db
def test_ending_one_customers_registration_leaves_another_customers_alone(
    registered, client_for, super_user_x, customer, meter
):
    other = UserFactory(email="second.utility@utility.example")
    client_for(other).post(reverse("devices:register"), {"serial": SERIAL, "code": CODE})
    _end(client_for(super_user_x), _registration(customer, meter))
    assert meter in visible_devices(other)
    assert not visible_devices(customer).exists()
    assert _customers_cell(client_for(super_user_x), meter) == "1"
