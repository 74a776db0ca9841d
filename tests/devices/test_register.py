"""+ Register device: serial + 2-digit code, limited so the 100 codes cannot be guessed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from devices.access import visible_devices
from devices.device_codes import hash_device_code
from devices.models import DeviceRegistration, RegistrationAttempt
from tests.factories import DeviceFactory, UserFactory

URL = "/devices/register/"


@pytest.fixture
def meter(org_x):  # noqa: ANN001, ANN201
    return DeviceFactory(
        owner=org_x, serial="63001468", device_code_hash=hash_device_code("63001468", "42")
    )


def _post(client, serial: str = "63001468", code: str = "42"):  # noqa: ANN001, ANN202
    return client.post(URL, {"serial": serial, "code": code})


@pytest.mark.django_db
def test_customer_registers_a_device_with_its_code(client_for, customer, meter):
    client = client_for(customer)
    assert client.get(URL).status_code == 200
    response = _post(client)
    assert response.status_code == 302
    assert meter in visible_devices(customer)
    listed = client.get("/devices/")
    assert "Device 63001468 was added to your list." in listed.content.decode()
    assert [r.record.serial for r in listed.context["table"].page.object_list] == ["63001468"]
    event = AuditEvent.objects.get(action="device.register")
    assert event.outcome == "ok" and event.object_ids == [meter.pk]


@pytest.mark.django_db
def test_registering_twice_says_it_is_already_listed(client_for, customer, meter):
    client = client_for(customer)
    _post(client)
    _post(client)
    assert DeviceRegistration.objects.filter(user=customer).count() == 1
    assert "already in your list" in client.get("/devices/").content.decode()


@pytest.mark.django_db
def test_wrong_code_and_unknown_serial_get_the_same_answer(client_for, customer, meter):
    client = client_for(customer)
    wrong = _post(client, code="43")
    unknown = _post(client, serial="99999999")
    assert wrong.status_code == unknown.status_code == 400
    message = "The serial number and device code do not match a device."
    assert message in wrong.content.decode() and message in unknown.content.decode()
    assert not visible_devices(customer).exists()
    assert AuditEvent.objects.filter(action="device.register", outcome="failed").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("serial", "code", "error"),
    [
        ("6300146", "42", "exactly 8 digits"),
        ("63OO1468", "42", "exactly 8 digits"),
        ("63001468", "4", "exactly 2 digits"),
        ("63001468", "4x", "exactly 2 digits"),
        ("", "", "This field is required"),
        # Digits of other scripts are digits to Python's \d, but no meter label has them: they
        # were looked up, counted as a failed attempt and answered "do not match".
        ("\u0666\u0663\u0660\u0660\u0661\u0664\u0666\u0668", "42", "exactly 8 digits"),
        ("\uff16\uff13001468", "42", "exactly 8 digits"),
        ("63001468", "\u0664\u0662", "exactly 2 digits"),
    ],
)
def test_malformed_serial_or_code_is_explained(client_for, customer, meter, serial, code, error):
    response = _post(client_for(customer), serial=serial, code=code)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not RegistrationAttempt.objects.exists()


@pytest.mark.django_db
def test_five_wrong_codes_lock_the_serial_for_everybody_even_with_the_right_code(
    client_for, customer, outsider, meter
):
    client = client_for(customer)
    for code in ("00", "01", "02", "03", "04"):
        assert _post(client, code=code).status_code == 400
    locked = _post(client_for(outsider), code="42")
    assert locked.status_code == 429
    assert "Try again after" in locked.content.decode()
    assert "do not match" not in locked.content.decode()
    assert not visible_devices(outsider).exists()
    assert AuditEvent.objects.filter(action="device.register", outcome="locked").count() == 1


@pytest.mark.django_db
def test_the_serial_lock_ends_after_24_hours(client_for, customer, meter):
    old = timezone.now() - timedelta(hours=25)
    for _ in range(5):
        attempt = RegistrationAttempt.objects.create(
            user=customer, serial="63001468", outcome=RegistrationAttempt.Outcome.FAILED
        )
        RegistrationAttempt.objects.filter(pk=attempt.pk).update(created_at=old)
    assert _post(client_for(customer)).status_code == 302


@pytest.mark.django_db
def test_twenty_failures_lock_the_account_for_every_serial(client_for, customer, meter):
    client = client_for(customer)
    for i in range(20):
        assert _post(client, serial=f"{10_000_000 + i:08d}").status_code == 400
    response = _post(client)
    assert response.status_code == 429
    assert not visible_devices(customer).exists()
    other = UserFactory()
    assert _post(client_for(other)).status_code == 302


@pytest.mark.django_db
def test_register_needs_login(client):
    assert client.get(URL).status_code == 302
