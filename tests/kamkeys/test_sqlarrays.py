"""One SQL parameter for many values: the same rows as ``__in`` on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest

from devices.models import Device
from kamkeys.sqlarrays import column_in
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_many_ids_select_exactly_those_devices():
    devices = DeviceFactory.create_batch(4)
    wanted = [devices[0].pk, devices[2].pk, 10**12]
    assert set(Device.objects.filter(column_in("id", wanted)).values_list("pk", flat=True)) == {
        devices[0].pk,
        devices[2].pk,
    }


def test_text_values_with_quotes_commas_and_backslashes_match_only_themselves():
    plain = DeviceFactory(serial="12345678")
    odd = DeviceFactory(serial='a"b,c\\d')
    found = Device.objects.filter(column_in("serial", ['a"b,c\\d', "a", "{}"], "text"))
    assert list(found.values_list("pk", flat=True)) == [odd.pk]
    assert plain.pk not in found.values_list("pk", flat=True)
