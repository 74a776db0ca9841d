"""The references PostgreSQL checks per statement instead of per row (no row-level foreign
keys on Device.owner and DeviceKey.device): the same guarantees a foreign key gave."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import Organization
from devices.models import Device
from keyvault.models import DeviceKey
from keyvault.services import store_device_keys
from tests.factories import DeviceFactory

DEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
MISSING = 987_654_321


@pytest.mark.django_db
def test_the_database_refuses_a_key_for_a_missing_device(postgres):
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceKey.objects.create(device_id=MISSING, name="DEK", wrapped=b"x", kek_version=1)
    assert DeviceKey.objects.count() == 0


@pytest.mark.django_db
def test_the_database_refuses_moving_a_key_to_a_missing_device_but_rewraps_in_place(postgres):
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK})
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceKey.objects.update(device_id=MISSING)
    DeviceKey.objects.update(kek_version=7)  # what rotation does: the device stays
    assert DeviceKey.objects.get().device_id == device.pk


@pytest.mark.django_db
def test_deleting_devices_by_sql_deletes_their_keys(postgres):
    kept, removed = DeviceFactory.create_batch(2)
    store_device_keys(kept, {"DEK": DEK})
    store_device_keys(removed, {"DEK": DEK, "GPK1": DEK})
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM devices_device WHERE id = %s", [removed.pk])
    assert list(DeviceKey.objects.values_list("device_id", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_the_database_refuses_a_device_owned_by_a_missing_organization(postgres, org_x):
    with pytest.raises(IntegrityError), transaction.atomic():
        DeviceFactory(owner_id=MISSING)
    device = DeviceFactory(owner=org_x)
    with pytest.raises(IntegrityError), transaction.atomic():
        Device.objects.filter(pk=device.pk).update(owner_id=MISSING)
    Device.objects.filter(pk=device.pk).update(owner_id=None)  # unassigned is allowed
    assert Device.objects.get(pk=device.pk).owner_id is None


@pytest.mark.django_db
def test_an_organization_that_owns_devices_cannot_be_deleted_even_by_sql(postgres, org_x, org_y):
    DeviceFactory(owner=org_x)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_organization WHERE id = %s", [org_x.pk])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_organization WHERE id = %s", [org_y.pk])
    assert list(Organization.objects.values_list("pk", flat=True)) == [org_x.pk]
