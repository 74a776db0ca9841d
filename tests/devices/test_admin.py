"""Staff find devices in the admin and transfer ownership; the transfer is audited."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from devices.models import Device
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_staff_finds_a_device_by_serial(client_for, staff_user, org_x):
    DeviceFactory(owner=org_x, serial="63001468")
    DeviceFactory(owner=org_x, serial="63001634")
    client = client_for(staff_user)
    response = client.get("/admin/devices/device/", {"q": "63001468"})
    assert response.status_code == 200
    assert b"63001468" in response.content
    assert b"63001634" not in response.content


def test_staff_transfers_a_device_and_the_transfer_is_audited(client_for, staff_user, org_x, org_y):
    device = DeviceFactory(owner=org_x, serial="63001468", device_code_hash="h1$secret-hash")
    client = client_for(staff_user)
    page = client.get(f"/admin/devices/device/{device.pk}/change/")
    assert page.status_code == 200
    assert b"secret-hash" not in page.content
    response = client.post(
        f"/admin/devices/device/{device.pk}/change/",
        {
            "kind": device.kind,
            "device_type": device.device_type,
            "type_no": device.type_no,
            "config_no": device.config_no,
            "consumption_type": device.consumption_type,
            "production_year": "",
            "order_no": device.order_no,
            "owner": org_y.pk,
        },
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.owner == org_y
    event = AuditEvent.objects.get(action="transfer")
    assert event.object_ids == [device.pk]
    assert event.actor == staff_user and event.channel == "admin"


def test_devices_cannot_be_added_or_deleted_in_the_admin(client_for, staff_user, org_x):
    device = DeviceFactory(owner=org_x)
    client = client_for(staff_user)
    assert client.get("/admin/devices/device/add/").status_code == 403
    assert client.get(f"/admin/devices/device/{device.pk}/delete/").status_code == 403
    assert Device.objects.filter(pk=device.pk).exists()


def test_staff_changing_a_devices_type_or_order_number_is_audited(client_for, staff_user, org_x):
    """The type and order number go into every key file a customer receives (keys.csv, the
    meter files): a change by staff was saved with no trace of who made it."""
    device = DeviceFactory(owner=org_x, serial="63001468", device_type="MULTICAL 21")
    response = client_for(staff_user).post(
        f"/admin/devices/device/{device.pk}/change/",
        {
            "kind": device.kind,
            "device_type": "MULTICAL 403",
            "type_no": device.type_no,
            "config_no": device.config_no,
            "consumption_type": device.consumption_type,
            "production_year": "",
            "order_no": "4509999",
            "owner": org_x.pk,
        },
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="device.edit")
    assert event.actor == staff_user and event.channel == "admin"
    assert event.object_ids == [device.pk]
    assert event.detail["serial"] == "63001468"
    assert event.detail["changes"]["device_type"] == ["MULTICAL 21", "MULTICAL 403"]
    assert event.detail["changes"]["order_no"] == [device.order_no, "4509999"]
    assert "owner" not in event.detail["changes"]
    assert not AuditEvent.objects.filter(action="transfer").exists()


@pytest.mark.django_db
def test_the_device_search_tells_staff_that_a_serial_number_is_matched_whole(
    client_for, staff_user, org_x
):
    DeviceFactory(owner=org_x, serial="63001468")
    page = client_for(staff_user).get("/admin/devices/device/", {"q": "6300146"})
    content = page.content.decode()
    assert "0 results" in content
    assert "Serial number: all 8 digits." in content
