"""Remove device: drops one's own registration or read right; never an owned device."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from devices.access import visible_devices
from devices.models import DeviceRegistration
from readrights.models import ReadRight
from tests.factories import web

URL = "/devices/remove/"
SELECTION = "/devices/selection/"


def _select(client, devices) -> None:  # noqa: ANN001
    client.post(SELECTION, {"action": "select", "device": [d.pk for d in devices]})


@pytest.mark.django_db
def test_customer_removes_a_read_right_which_is_revoked_not_deleted(
    client_for, customer, super_user_x, devices_x
):
    right = ReadRight.objects.create(device=devices_x[0], grantee=customer, granted_by=super_user_x)
    DeviceRegistration.objects.create(user=customer, device=devices_x[1])
    client = client_for(customer)
    _select(client, devices_x[:2])
    page = client.get(URL)
    assert "Remove 2 selected devices" in page.content.decode()
    response = client.post(URL)
    assert response.status_code == 302
    right.refresh_from_db()
    assert right.revoked_at is not None and right.revoked_by == customer
    assert not DeviceRegistration.objects.filter(user=customer).exists()
    assert not visible_devices(customer).exists()
    event = AuditEvent.objects.get(action="device.remove")
    assert sorted(event.object_ids) == sorted([devices_x[0].pk, devices_x[1].pk])


@pytest.mark.django_db
def test_distributor_cannot_remove_devices_its_organization_owns(
    client_for, super_user_x, devices_x
):
    client = client_for(super_user_x)
    _select(client, devices_x[:2])
    page = client.get(URL)
    content = page.content.decode()
    assert "belong to your organization" in content
    assert "managed by the manufacturer" in content
    client.post(URL)
    assert visible_devices(super_user_x).count() == len(devices_x)
    assert not AuditEvent.objects.filter(action="device.remove").exists()


@pytest.mark.django_db
def test_removing_with_an_empty_selection_says_what_to_do(client_for, customer):
    response = client_for(customer).post(URL)
    assert response.status_code == 302
    follow = client_for(customer).get("/devices/")
    assert follow.status_code == 200


@pytest.mark.django_db
def test_foreign_devices_cannot_be_removed_by_injecting_ids(
    client_for, customer, super_user_y, devices_y
):
    other_right = ReadRight.objects.create(
        device=devices_y[0], grantee=super_user_y, granted_by=super_user_y
    )
    client = client_for(customer)
    _select(client, devices_y)
    response = client.post(URL, {"device": [d.pk for d in devices_y]})
    assert response.status_code == 302
    other_right.refresh_from_db()
    assert other_right.revoked_at is None


@pytest.mark.django_db
def test_removing_devices_keeps_a_registration_the_owner_ended(customer, super_user_x, devices_x):
    from django.utils import timezone

    from devices.models import Device
    from devices.services import remove_devices

    ended = DeviceRegistration.objects.create(
        user=customer, device=devices_x[0], ended_at=timezone.now(), ended_by=super_user_x
    )
    DeviceRegistration.objects.create(user=customer, device=devices_x[1])
    # Even a selection that names the ended one (the views never pass such a selection:
    # it is not visible) leaves it, with who ended it: it keeps blocking a re-registration.
    remove_devices(
        Device.objects.filter(pk__in=[devices_x[0].pk, devices_x[1].pk]), context=web(customer)
    )
    assert list(DeviceRegistration.objects.filter(user=customer)) == [ended]
    ended.refresh_from_db()
    assert ended.ended_by == super_user_x
