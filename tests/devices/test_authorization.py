"""Every devices view, for every role, for own and foreign devices."""

from __future__ import annotations

import io

import pytest
import pyzipper

from keyvault.services import store_device_keys
from readrights.models import ReadRight

PASSWORD = "Matrix of roles and rights 2026!"
ROLES = ["super_user_x", "super_user_y", "customer", "outsider", "staff_user"]
# Which role may see device_x[0] (own / read right) — everybody else must not learn of it.
SEES_X0 = {"super_user_x": True, "customer": True}


@pytest.fixture
def world(super_user_x, customer, devices_x, devices_y):  # noqa: ANN001, ANN201
    ReadRight.objects.create(device=devices_x[0], grantee=customer, granted_by=super_user_x)
    store_device_keys(devices_x[0], {"DEK": b"\x11" * 16})
    return devices_x


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_role_lists_selects_and_downloads_only_what_it_may_see(
    request, client_for, world, role
):
    user = request.getfixturevalue(role)
    client = client_for(user)
    target = world[0]
    sees = SEES_X0.get(role, False)

    listing = client.get("/devices/")
    assert listing.status_code == 200
    listed = {row.record.pk for row in listing.context["table"].page.object_list}
    assert (target.pk in listed) is sees

    searched = client.get("/devices/", {"serial": target.serial})
    assert searched.context["total"] == (1 if sees else 0)

    selected = client.post(
        "/devices/selection/",
        {"action": "select", "device": [target.pk]},
        HTTP_ACCEPT="application/json",
    )
    assert selected.json() == {"selected": 1 if sees else 0}
    client.post("/devices/selection/", {"action": "select_search", "serial": target.serial})

    download = client.post(
        "/devices/download/",
        {"format": "zip", "password": PASSWORD, "password_repeat": PASSWORD},
    )
    if not sees:
        assert download.status_code == 302  # nothing selected: back to the list, no file
        return
    with pyzipper.AESZipFile(io.BytesIO(b"".join(download.streaming_content))) as archive:
        archive.setpassword(PASSWORD.encode())
        assert target.serial in archive.read("keys.csv").decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_remove_never_touches_what_a_role_does_not_hold(request, client_for, world, role):
    user = request.getfixturevalue(role)
    client = client_for(user)
    client.post("/devices/selection/", {"action": "select", "device": [d.pk for d in world]})
    client.post("/devices/remove/")
    right = ReadRight.objects.get(device=world[0])
    assert (right.revoked_at is not None) is (role == "customer")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/devices/"),
        ("post", "/devices/selection/"),
        ("get", "/devices/selection/paste/"),
        ("get", "/devices/register/"),
        ("get", "/devices/remove/"),
        ("get", "/devices/download/"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
