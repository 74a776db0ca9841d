"""A Super User's page follows their read rights and registrations on other organizations'
devices at once: the query asking for them is compiled once per process (kamkeys.prepared),
never its answer, so a revoked, expired or ended right is gone on the next page and a new one is
there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import DeviceRegistration
from readrights.models import ReadRight

pytestmark = pytest.mark.django_db
URL = "/devices/"


def _listed(client) -> set[int]:  # noqa: ANN001
    response = client.get(URL, {"per_page": 100})
    assert response.status_code == 200
    return {row.record.pk for row in response.context["table"].page.object_list}


def test_rights_elsewhere_appear_and_vanish_page_by_page(
    client_for, super_user_x, super_user_y, devices_x, devices_y
):
    client = client_for(super_user_x)
    own = {d.pk for d in devices_x}
    foreign = devices_y[0]
    assert _listed(client) == own

    right = ReadRight.objects.create(device=foreign, grantee=super_user_x, granted_by=super_user_y)
    assert _listed(client) == own | {foreign.pk}

    ReadRight.objects.filter(pk=right.pk).update(revoked_at=timezone.now())
    assert _listed(client) == own

    ReadRight.objects.filter(pk=right.pk).update(
        revoked_at=None, expires_at=timezone.now() + timedelta(seconds=2)
    )
    assert _listed(client) == own | {foreign.pk}
    ReadRight.objects.filter(pk=right.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _listed(client) == own  # expired since the last page: compared at query time

    registration = DeviceRegistration.objects.create(user=super_user_x, device=devices_y[1])
    assert _listed(client) == own | {devices_y[1].pk}
    DeviceRegistration.objects.filter(pk=registration.pk).update(ended_at=timezone.now())
    assert _listed(client) == own


def test_another_super_user_never_gets_the_first_ones_rights(
    client_for, super_user_x, super_user_y, devices_x, devices_y
):
    ReadRight.objects.create(device=devices_x[0], grantee=super_user_y, granted_by=super_user_x)
    assert devices_x[0].pk in _listed(client_for(super_user_y))
    assert _listed(client_for(super_user_x)) == {d.pk for d in devices_x}
    assert devices_y[0].pk not in _listed(client_for(super_user_x))


def test_customers_column_counts_only_live_rights_on_each_page(
    client_for, super_user_x, customer, devices_x
):
    client = client_for(super_user_x)
    right = ReadRight.objects.create(device=devices_x[0], grantee=customer, granted_by=super_user_x)

    def readers() -> dict[int, int]:
        return client.get(URL).context["table"].reader_counts

    assert readers() == {devices_x[0].pk: 1}
    ReadRight.objects.filter(pk=right.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert readers() == {}
