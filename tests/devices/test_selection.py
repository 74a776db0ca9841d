"""The session selection: explicit ticks, whole searches, exceptions — always within view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.utils import timezone

from devices.models import DeviceSelection
from devices.selection import (
    clear_selection,
    deselect_ids,
    select_ids,
    select_search,
    selected_devices,
    selection_count,
)
from tests.factories import DeviceFactory


def _request(user):  # noqa: ANN001, ANN202
    request = RequestFactory().get("/devices/")
    request.user = user
    request.session = SessionStore()
    return request


@pytest.mark.django_db
def test_nothing_is_selected_at_first(super_user_x, devices_x):
    request = _request(super_user_x)
    assert selection_count(request) == 0
    assert list(selected_devices(request)) == []


@pytest.mark.django_db
def test_ticked_devices_are_selected_and_foreign_ids_are_ignored(
    super_user_x, devices_x, devices_y
):
    request = _request(super_user_x)
    select_ids(request, [devices_x[0].pk, devices_x[1].pk, devices_y[0].pk])
    assert set(selected_devices(request)) == {devices_x[0], devices_x[1]}
    assert selection_count(request) == 2


@pytest.mark.django_db
def test_select_all_in_search_keeps_the_search_not_the_ids(super_user_x, org_x):
    wanted = DeviceFactory.create_batch(3, owner=org_x, device_type="MULTICAL 403")
    DeviceFactory.create_batch(2, owner=org_x, device_type="flowIQ 2200")
    request = _request(super_user_x)
    select_search(request, {"type": "multical"})
    stored = DeviceSelection.objects.get(user=super_user_x)
    assert stored.data["ids"] == [] and stored.data["searches"] == [{"type": "multical"}]
    assert set(selected_devices(request)) == set(wanted)
    deselect_ids(request, [wanted[0].pk])
    assert selection_count(request) == 2
    later = DeviceFactory(owner=org_x, device_type="MULTICAL 21")
    assert later in set(selected_devices(request))
    select_search(request, {"type": "403"})
    assert wanted[0] in set(selected_devices(request))


@pytest.mark.django_db
def test_clear_selection_empties_it(super_user_x, devices_x):
    request = _request(super_user_x)
    select_search(request, {})
    assert selection_count(request) == len(devices_x)
    clear_selection(request)
    assert selection_count(request) == 0


@pytest.mark.django_db
def test_selection_never_reaches_beyond_what_the_user_sees(customer, devices_x):
    request = _request(customer)
    select_search(request, {})
    select_ids(request, [d.pk for d in devices_x])
    assert selection_count(request) == 0


@pytest.mark.django_db
def test_count_of_a_search_with_exceptions_and_extra_ticks_is_exact(super_user_x, org_x):
    multical = DeviceFactory.create_batch(4, owner=org_x, device_type="MULTICAL 21")
    flow = DeviceFactory.create_batch(3, owner=org_x, device_type="flowIQ 2200")
    request = _request(super_user_x)
    select_search(request, {"type": "multical"})
    assert selection_count(request) == 4
    deselect_ids(request, [multical[0].pk, flow[0].pk])
    select_ids(request, [flow[1].pk, multical[1].pk])
    assert selection_count(request) == 4 == selected_devices(request).count()
    deselect_ids(request, [flow[1].pk])
    assert selection_count(request) == 3 == selected_devices(request).count()
    select_search(request, {})
    deselect_ids(request, [flow[2].pk])
    assert selection_count(request) == 6 == selected_devices(request).count()


@pytest.mark.django_db
def test_a_selection_made_before_the_upgrade_is_kept_and_moved_out_of_the_session(
    super_user_x, devices_x
):
    request = _request(super_user_x)
    request.session["devices_selection"] = {"ids": [devices_x[0].pk], "searches": []}
    assert selection_count(request) == 1
    select_ids(request, [devices_x[1].pk])
    assert "devices_selection" not in request.session
    assert DeviceSelection.objects.get(user=super_user_x).data["ids"] == [
        devices_x[0].pk,
        devices_x[1].pk,
    ]


@pytest.mark.django_db
def test_abandoned_selections_of_the_user_go_when_a_new_session_selects(
    super_user_x, super_user_y, devices_x
):
    old = timezone.now() - timedelta(days=31)
    for user, key in [(super_user_x, "a" * 64), (super_user_y, "b" * 64)]:
        DeviceSelection.objects.create(user=user, key=key, data={"ids": [1]}, updated_at=old)
    recent = DeviceSelection.objects.create(
        user=super_user_x, key="c" * 64, data={"ids": [1]}, updated_at=timezone.now()
    )
    select_ids(_request(super_user_x), [devices_x[0].pk])
    left = set(DeviceSelection.objects.values_list("user", "key"))
    assert (super_user_x.pk, "a" * 64) not in left  # abandoned, same user: gone
    assert (super_user_y.pk, "b" * 64) in left  # another user's rows are theirs to clean
    assert (super_user_x.pk, recent.key) in left  # another live session of the same user
