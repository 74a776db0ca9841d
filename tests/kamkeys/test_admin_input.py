"""Hostile query strings on the admin's lists: a clear 4xx, never a server error."""

from __future__ import annotations

import pytest

from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/devices/device/?device_type=a%00b",
        "/admin/audit/auditevent/?action=%00",
        "/admin/devices/device/?q=63%0001468",
        "/admin/accounts/user/?a%00b=1",
    ],
)
def test_a_nul_byte_in_an_admin_list_filter_is_a_400_not_a_server_error(
    client_for, staff_user, org_x, url
):
    """PostgreSQL refuses text holding NUL, and the admin passes list filter values straight
    to the database: a NUL in one was a 500."""
    DeviceFactory(owner=org_x)
    response = client_for(staff_user).get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
