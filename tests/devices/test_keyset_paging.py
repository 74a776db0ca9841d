"""Next and Previous on My devices continue from the rows the user saw (keyset paging)."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device
from devices.paging import encode_cursor
from tests.factories import DeviceFactory, OrganizationFactory

URL = "/devices/"


def _serials(response) -> list[str]:  # noqa: ANN001
    return [row.record.serial for row in response.context["table"].page.object_list]


def _link(response, rel: str) -> dict[str, str] | None:  # noqa: ANN001
    match = re.search(rf'<a href="([^"]*)" rel="{rel}">', response.content.decode())
    if not match:
        return None
    query = parse_qs(urlsplit(unescape(match.group(1))).query)
    return {key: values[-1] for key, values in query.items()}


def _walk(client, params: dict[str, str], rel: str) -> list[list[str]]:  # noqa: ANN001
    pages = []
    while params is not None:
        response = client.get(URL, params)
        assert response.status_code == 200
        pages.append(_serials(response))
        params = _link(response, rel)
    return pages


@pytest.fixture
def sixty_devices(org_x):
    for i in range(60):
        DeviceFactory(
            owner=org_x,
            serial=f"{10_000_000 + i * 7 % 60:08d}",
            device_type=f"T{i % 4}",
            order_no=f"{500 + i % 9}",
        )


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["serial", "-serial", "device_type", "-order_no", "order_no"])
def test_next_then_previous_walk_every_device_once_in_order(
    client_for, super_user_x, sixty_devices, sort
):
    client = client_for(super_user_x)
    whole = _serials(client.get(URL, {"sort": sort, "per_page": 100}))
    forward = _walk(client, {"sort": sort}, "next")
    assert [len(page) for page in forward] == [25, 25, 10]
    assert sum(forward, []) == whole

    last = client.get(URL, {"sort": sort, "page": 3})
    backward = _walk(client, {"sort": sort, "page": "3"}, "prev")
    assert backward[0] == _serials(last)
    assert sum(reversed(backward), []) == whole


@pytest.mark.django_db
@pytest.mark.parametrize("small_result", [2000, 40, 10])
@pytest.mark.parametrize("sort", ["serial", "-order_no"])
def test_a_substring_search_pages_forward_and_back_whether_its_result_is_small_or_large(
    client_for, super_user_x, sixty_devices, org_x, monkeypatch, small_result, sort
):
    monkeypatch.setattr("devices.paging.SMALL_RESULT", small_result)
    for i in range(5):  # not matching "100"
        DeviceFactory(owner=org_x, serial=f"7777777{i}")
    client = client_for(super_user_x)
    params = {"serial": "100", "sort": sort}
    whole = _serials(client.get(URL, {**params, "per_page": 100}))
    assert len(whole) == 60
    forward = _walk(client, params, "next")
    assert sum(forward, []) == whole
    backward = _walk(client, {**params, "page": "3"}, "prev")
    assert sum(reversed(backward), []) == whole
    assert client.get(URL, params).context["total"] == 60


@pytest.mark.django_db
def test_next_links_carry_a_cursor_and_the_page_number(client_for, super_user_x, sixty_devices):
    client = client_for(super_user_x)
    first = client.get(URL, {"serial": "100"})
    following = _link(first, "next")
    assert following["page"] == "2"
    assert following["serial"] == "100"
    assert following["after"] == encode_cursor([_serials(first)[-1], _pk_of_last(first)])
    second = client.get(URL, following)
    assert second.context["table"].page.number == 2
    assert _link(second, "prev")["before"] == encode_cursor(
        [_serials(second)[0], second.context["table"].page.object_list[0].record.pk]
    )


def _pk_of_last(response) -> int:  # noqa: ANN001
    return response.context["table"].page.object_list[-1].record.pk


@pytest.mark.django_db
def test_next_page_does_not_shift_when_devices_are_added_before_it(
    client_for, super_user_x, org_x, sixty_devices
):
    client = client_for(super_user_x)
    first = client.get(URL)
    seen = _serials(first)
    for i in range(5):  # new devices sorting before everything on the first page
        DeviceFactory(owner=org_x, serial=f"{1_000 + i:08d}")
    second = _serials(client.get(URL, _link(first, "next")))
    assert second[0] > seen[-1]
    by_number = _serials(client.get(URL, {"page": 2}))
    assert by_number[0] < seen[-1]  # what an offset would have shown: rows seen again
    assert second == [s for s in _serials(client.get(URL, {"per_page": 100})) if s > seen[-1]][:25]


@pytest.mark.django_db
def test_devices_with_the_same_serial_are_each_listed_once(client_for, super_user_x, org_x):
    for i in range(30):
        DeviceFactory(owner=org_x, serial=f"{20_000_000 + i:08d}", manufacturer="KAM")
        DeviceFactory(owner=org_x, serial=f"{20_000_000 + i:08d}", manufacturer="ABB")
    pages = _walk(client_for(super_user_x), {}, "next")
    walked = sum(pages, [])
    assert len(walked) == 60
    assert walked == sorted(walked)
    assert all(walked.count(serial) == 2 for serial in set(walked))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        encode_cursor(["x"]),
        encode_cursor([1, 2]),
        encode_cursor(["10000001", True]),
        encode_cursor(["10000001", -4]),
        encode_cursor(["10000001", 2**70]),
        "A" * 5000,
    ],
)
def test_a_mangled_cursor_shows_the_numbered_page(client_for, super_user_x, sixty_devices, cursor):
    client = client_for(super_user_x)
    expected = _serials(client.get(URL, {"page": 2}))
    for name in ("after", "before"):
        response = client.get(URL, {"page": 2, name: cursor})
        assert response.status_code == 200
        assert _serials(response) == expected


@pytest.mark.django_db
def test_a_cursor_shows_only_devices_the_user_may_see(client_for, super_user_x, sixty_devices):
    other = OrganizationFactory()
    hidden = [DeviceFactory(owner=other, serial=f"{1_000 + i:08d}") for i in range(3)]
    response = client_for(super_user_x).get(
        URL, {"page": 2, "before": encode_cursor(["99999999", 2**40])}
    )
    assert not {d.serial for d in hidden} & set(_serials(response))


@pytest.mark.django_db
def test_sorting_and_page_numbers_drop_the_cursor(client_for, super_user_x, sixty_devices):
    client = client_for(super_user_x)
    second = client.get(URL, _link(client.get(URL), "next"))
    page = second.content.decode()
    number_links = re.findall(r'<a href="([^"]*)">\d+</a>', page)
    sort_links = re.findall(r'<a href="([^"]*sort=[^"]*)">', page)
    assert number_links and sort_links
    assert not any("after=" in unescape(h) or "before=" in unescape(h) for h in number_links)
    assert not any("after=" in unescape(h) for h in sort_links)


@pytest.mark.django_db
def test_a_long_list_says_a_page_number_jump_is_slower_than_next(client_for, super_user_x, org_x):
    client = client_for(super_user_x)
    DeviceFactory.create_batch(30, owner=org_x)
    assert "paging-help" not in client.get(URL).content.decode()  # 2 pages: numbers are the way
    Device.objects.bulk_create(
        Device(owner=org_x, serial=f"{30_000_000 + i:08d}", device_type="T", device_code_hash="x")
        for i in range(1000)
    )
    page = client.get(URL).content.decode()
    assert "paging-help" in page
    assert "Next and Previous are quick at any depth" in page


@pytest.mark.django_db
def test_next_in_a_large_substring_search_reuses_its_count_until_the_devices_change(
    postgres, client_for, super_user_x, org_x, sixty_devices, monkeypatch
):
    monkeypatch.setattr("devices.paging.SMALL_RESULT", 10)  # sixty matches are "large"
    client = client_for(super_user_x)
    first = client.get(URL, {"serial": "100"})
    assert first.context["total"] == 60
    with CaptureQueriesContext(connection) as captured:
        second = client.get(URL, _link(first, "next"))
    assert second.context["total"] == 60
    assert not [q for q in captured.captured_queries if "count(*) OVER" in q["sql"]]
    DeviceFactory(owner=org_x, serial="10099999")
    third = client.get(URL, _link(first, "next"))
    assert third.context["total"] == 61
