"""The per-owner counts behind "Number of devices in your search" stay exact (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection

from devices.counts import owned_count, recount
from devices.models import Device
from tests.factories import DeviceFactory, OrganizationFactory


def _real(org_id: int) -> int:
    return Device.objects.filter(owner_id=org_id).count()


@pytest.mark.django_db
def test_owner_counts_follow_every_kind_of_write(postgres, org_x, org_y):
    DeviceFactory(owner=org_x)
    DeviceFactory.create_batch(3, owner=org_x)
    Device.objects.bulk_create(
        [
            Device(serial=f"{90_000_000 + i:08d}", device_type="OMNIPOWER", owner=org_y)
            for i in range(5)
        ]
    )
    assert owned_count([org_x.pk]) == _real(org_x.pk) == 4
    assert owned_count([org_y.pk]) == 5
    moved = Device.objects.filter(owner=org_y)[:2]
    Device.objects.filter(pk__in=[d.pk for d in moved]).update(owner=org_x)
    assert owned_count([org_x.pk]) == _real(org_x.pk) == 6
    assert owned_count([org_y.pk]) == _real(org_y.pk) == 3
    Device.objects.filter(owner=org_x).first().delete()
    Device.objects.filter(owner=org_y).update(owner=None)
    Device.objects.filter(owner__isnull=True).update(device_type="MULTICAL 21")
    assert owned_count([org_x.pk]) == _real(org_x.pk) == 5
    assert owned_count([org_y.pk]) == 0
    assert owned_count([org_x.pk, org_y.pk]) == 5
    one = Device.objects.filter(owner=org_x).first()
    Device.objects.filter(pk=one.pk).update(device_type="flowIQ 2200")
    for device_type in ("flowIQ 2200", "MULTICAL 21", "OMNIPOWER"):
        real = Device.objects.filter(owner=org_x, device_type=device_type).count()
        assert owned_count([org_x.pk], [device_type]) == real
    assert owned_count([org_x.pk], ["flowIQ 2200"]) == 1
    assert owned_count([org_x.pk], []) == 0


@pytest.mark.django_db
def test_recount_repairs_counts_written_behind_the_triggers_back(postgres, org_x):
    DeviceFactory.create_batch(2, owner=org_x)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE devices_ownertypecount SET n = 99")
    recount()
    assert owned_count([org_x.pk]) == 2


@pytest.mark.django_db
def test_the_page_count_uses_them_and_matches_the_rows(client_for, super_user_x, org_x):
    DeviceFactory.create_batch(7, owner=org_x)
    other = OrganizationFactory(name="Someone Else")
    DeviceFactory.create_batch(2, owner=other)
    client = client_for(super_user_x)
    assert client.get("/devices/").context["total"] == 7
    assert client.get("/devices/", {"owner": "distributor x"}).context["total"] == 7
    assert client.get("/devices/", {"owner": "someone"}).context["total"] == 0
    assert client.get("/devices/", {"type": "multical"}).context["total"] == 7
    assert client.get("/devices/", {"type": "flowiq"}).context["total"] == 0
    client.post("/devices/selection/", {"action": "select_search"})
    assert client.get("/devices/", {"type": "nothing"}).context["selected_count"] == 7
