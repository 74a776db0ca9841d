"""The first page of a Super User's whole list (one compiled query) is the same page the
ORM would give, in every sort order, and steps aside for searches and rights elsewhere."""

from __future__ import annotations

import pytest

from devices.models import Device
from readrights.models import ReadRight
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
URL = "/devices/"
TYPES = ["MULTICAL 21", "flowIQ 2200", "OMNIPOWER"]


def _listed(client, **query) -> list[int]:  # noqa: ANN001, ANN003
    response = client.get(URL, query)
    assert response.status_code == 200
    return [row.record.pk for row in response.context["table"].page.object_list]


@pytest.fixture
def owned(org_x):  # noqa: ANN001, ANN201
    return [
        DeviceFactory(owner=org_x, serial=f"{(i * 7919) % 100:08d}", device_type=TYPES[i % 3])
        for i in range(30)
    ]


@pytest.mark.parametrize(
    ("sort", "ordering"),
    [
        ("", ["serial", "pk"]),
        ("-serial", ["-serial", "-pk"]),
        ("order_no", ["order_no", "serial", "pk"]),
        ("-device_type", ["-device_type", "-serial", "-pk"]),
    ],
)
def test_first_and_second_pages_in_every_order(client_for, super_user_x, owned, sort, ordering):
    client = client_for(super_user_x)
    expected = list(
        Device.objects.filter(owner__in=[owned[0].owner])
        .order_by(*ordering)
        .values_list("pk", flat=True)
    )
    query = {"sort": sort} if sort else {}
    assert _listed(client, **query) == expected[:25]
    assert _listed(client, **query, page=2) == expected[25:]
    assert _listed(client, **query, per_page=100) == expected


def test_searches_and_rights_elsewhere_are_not_the_owned_list(
    client_for, super_user_x, super_user_y, owned, devices_y
):
    client = client_for(super_user_x)
    flowiq = [
        d.pk for d in sorted(owned, key=lambda d: (d.serial, d.pk)) if "flow" in d.device_type
    ]
    assert _listed(client, type="flowiq") == flowiq
    ReadRight.objects.create(device=devices_y[0], grantee=super_user_x, granted_by=super_user_y)
    assert devices_y[0].pk in _listed(client, per_page=100)
