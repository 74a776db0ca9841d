"""Assigning read rights names the devices: the first serials and "and N more" on the pages and
in the emails, and every serial in a list to download."""

from __future__ import annotations

import re

import pytest

from tests.factories import DeviceFactory, store_selection

ASSIGN = "/read-rights/assign/"
SERIALS = "/read-rights/serial-numbers/"


@pytest.fixture
def twelve_meters(org_x):  # noqa: ANN001, ANN201
    return [DeviceFactory(owner=org_x, serial=f"7100{n:04d}") for n in range(12)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.django_db
def test_the_confirm_page_names_the_first_serials_and_how_many_more(
    client_for, super_user_x, customer, twelve_meters
):
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [d.pk for d in twelve_meters])
    page = client.post(ASSIGN, {"emails": customer.email, "action": "review"})
    assert page.status_code == 200
    text = _text(page.content.decode())
    first_ten = ", ".join(f"7100{n:04d}" for n in range(10))
    assert f"Serial numbers: {first_ten} and 2 more." in text
    assert "71000011" not in text
    assert "Download the list of serial numbers" in text


@pytest.mark.django_db
def test_the_list_of_serial_numbers_downloads_every_selected_serial(
    client_for, super_user_x, twelve_meters, devices_y
):
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [d.pk for d in twelve_meters])
    response = client.get(SERIALS)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="serial-numbers.txt"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [f"7100{n:04d}" for n in range(12)]


@pytest.mark.django_db
def test_the_granted_and_invitation_emails_name_the_serials(
    client_for, super_user_x, customer, twelve_meters, outbox
):
    client = client_for(super_user_x)
    store_selection(client, super_user_x, [d.pk for d in twelve_meters])
    data = {"emails": f"{customer.email}, newbie@utility.dk", "action": "confirm"}
    with outbox():
        done = client.post(ASSIGN, {**data, "device_count": "12"})
    assert done.status_code == 302
    first_ten = ", ".join(f"7100{n:04d}" for n in range(10))
    for address in (customer.email, "newbie@utility.dk"):
        (message,) = outbox.to(address)
        assert f"Serial numbers: {first_ten} and 2 more" in message.body
        html = message.alternatives[0][0]
        assert f"Serial numbers: {first_ten} and 2 more" in html
