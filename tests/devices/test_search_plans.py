"""A SERIAL # / ORDER # substring search keeps the plan it was written for whatever the table's
statistics say (PostgreSQL): the planner settings travel with the query (devices.search)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device
from tests.factories import DeviceFactory

URL = "/devices/"


def _plans_of_device_queries(captured, *, analyze: bool = False) -> list[str]:  # noqa: ANN001
    """EXPLAIN (ANALYZE, when asked) of each search query the page ran (those with a LIKE),
    under the settings it ran with."""
    plans = []
    pending = None
    with connection.cursor() as cursor:
        for query in captured:
            sql = query["sql"]
            if sql.lstrip().upper().startswith("SET LOCAL"):
                pending = sql
                continue
            if "LIKE" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                pending = None
                continue
            cursor.execute("SAVEPOINT plan_check")
            if pending:
                cursor.execute(pending)
            cursor.execute(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
            cursor.execute("ROLLBACK TO SAVEPOINT plan_check")
            plans.append(plan if isinstance(plan, str) else json.dumps(plan))
            pending = None
    return plans


def _letters(i: int) -> str:
    """A serial or order number without digits: no digit search matches it."""
    return "Z" + "".join(chr(65 + i // 26**p % 26) for p in (3, 2, 1, 0))


def _nodes(plan: str) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) text."""
    found = []

    def walk(node: dict) -> None:
        found.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


def _scan_nodes(plan: str) -> list[tuple[str, str]]:
    """(node type, index or table) of every scan in an EXPLAIN (FORMAT JSON) text."""
    found = []

    def walk(node: dict) -> None:
        if "Scan" in node["Node Type"]:
            found.append((node["Node Type"], node.get("Index Name") or node.get("Relation Name")))
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "term"), [("serial", "1468"), ("order", "0123")])
def test_a_substring_search_is_counted_from_bitmaps_never_by_walking_the_owners_range(
    postgres, client_for, super_user_x, org_x, field, term
):
    # 20,040 devices of one owner, 40 of them matching. Left alone, the planner counts them by
    # reading every one of the owner's index entries with a filter (at a million devices:
    # 166 ms instead of 10 ms), or the whole table.
    Device.objects.bulk_create(
        Device(owner=org_x, serial=_letters(i), order_no=_letters(i), device_type="T")
        for i in range(20_000)
    )
    for i in range(40):
        DeviceFactory(owner=org_x, serial=f"1468{i:04d}", order_no=f"9{i:02d}0123")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE devices_device")
    with CaptureQueriesContext(connection) as captured:
        response = client_for(super_user_x).get(URL, {field: term})
    assert response.context["total"] == 40
    assert len(response.context["table"].page.object_list) == 25
    plans = _plans_of_device_queries(captured.captured_queries)
    counting = [
        plan
        for plan in plans
        if ("WindowAgg" in plan or '"Aggregate"' in plan) and '"devices_device"' in plan
    ]
    assert len(counting) == 1, "one query counts the matches and reads the small result"
    scans = _scan_nodes(counting[0])
    assert ("Bitmap Heap Scan", "devices_device") in scans
    assert not any(node in {"Seq Scan", "Index Scan", "Index Only Scan"} for node, _ in scans)
    # ORDER #: the order counts are asked first (40 devices: the small result is then read
    # whole, as above), from bitmaps too.
    order_counts = [plan for plan in plans if '"devices_ownerordercount"' in plan]
    assert len(order_counts) == (1 if field == "order" else 0)
    for plan in order_counts:
        nodes = {node for node, _ in _scan_nodes(plan)}
        assert "Bitmap Heap Scan" in nodes and not nodes & {"Seq Scan", "Index Scan"}


@pytest.mark.django_db
def test_a_large_substring_result_pages_along_the_sort_index(
    postgres, client_for, super_user_x, org_x, monkeypatch
):
    monkeypatch.setattr("devices.paging.SMALL_RESULT", 5)
    for i in range(30):
        DeviceFactory(owner=org_x, serial=f"{12_300_000 + i:08d}")
    with CaptureQueriesContext(connection) as captured:
        response = client_for(super_user_x).get(URL, {"serial": "123", "page": 2})
    assert len(response.context["table"].page.object_list) == 5
    page_queries = [
        plan
        for plan in _plans_of_device_queries(captured.captured_queries)
        if '"Limit"' in plan and "WindowAgg" not in plan
    ]
    assert page_queries
    assert all("Bitmap" not in plan and "devices_owner_serial_cov" in plan for plan in page_queries)


@pytest.mark.django_db
def test_the_first_page_of_a_large_substring_search_comes_from_the_scan_that_counts_it(
    postgres, client_for, super_user_x, org_x, monkeypatch
):
    """More matches than SMALL_RESULT: the count's one trigram scan also read the first
    SMALL_RESULT matches in order, so a page wholly inside them needs no second walk; a page
    past them still walks the sort index, and both show the devices in order."""
    monkeypatch.setattr("devices.paging.SMALL_RESULT", 30)
    for i in range(60):
        DeviceFactory(owner=org_x, serial=f"{12_300_000 + i * 7 % 60:08d}")
    client = client_for(super_user_x)
    in_order = [f"{12_300_000 + i:08d}" for i in range(60)]
    for page, walks in ((1, 0), (2, 1)):  # rows 1-25 lie inside the first 30; 26-50 do not
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL, {"serial": "123", "page": page})
        shown = [row.record.serial for row in response.context["table"].page.object_list]
        assert shown == in_order[(page - 1) * 25 : page * 25]
        page_walks = [
            plan
            for plan in _plans_of_device_queries(captured.captured_queries)
            if '"Limit"' in plan and "WindowAgg" not in plan
        ]
        assert len(page_walks) == walks, page


@pytest.mark.django_db
def test_a_substring_search_beside_a_type_that_names_no_type_finds_nothing_without_an_error(
    client_for, super_user_x, org_x
):
    DeviceFactory(owner=org_x, serial="10001468")
    response = client_for(super_user_x).get(URL, {"serial": "1468", "type": "no such type"})
    assert response.status_code == 200
    assert response.context["total"] == 0
    assert "No devices match your search." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "term", "index"),
    [
        ("serial", "146", "devices_owner_serial_lc_trgm"),
        ("order", "012", "devices_owner_order_lc_trgm"),
    ],
)
def test_a_substring_search_reads_only_the_owners_matches_from_the_owner_trigram_index(
    postgres, client_for, super_user_x, org_x, org_y, field, term, index
):
    # This distributor's 30 matches among its 20,030 devices, and another's 3,000 matches: the
    # trigram index alone hands all 3,030 to the table (at 5,000,000 devices, '273': 30,000 rows
    # fetched to keep 5,000), or the owner's whole (owner_id, ...) btree range is read into a
    # bitmap to AND with it.
    Device.objects.bulk_create(
        [
            Device(owner=org_y, serial=f"146{i:05d}", order_no=f"012{i:05d}", device_type="T")
            for i in range(3_000)
        ]
        + [
            Device(owner=org_x, serial=_letters(i), order_no=_letters(i), device_type="T")
            for i in range(20_000)
        ]
    )
    for i in range(30):
        DeviceFactory(owner=org_x, serial=f"9146{i:04d}", order_no=f"9{i:02d}0120")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE devices_device")
    with CaptureQueriesContext(connection) as captured:
        response = client_for(super_user_x).get(URL, {field: term})
    assert response.context["total"] == 30
    plans = _plans_of_device_queries(captured.captured_queries, analyze=True)
    counting = [plan for plan in plans if "WindowAgg" in plan]
    assert len(counting) == 1
    bitmaps = [node for node in _nodes(counting[0]) if node["Node Type"] == "Bitmap Index Scan"]
    assert [node["Index Name"] for node in bitmaps] == [index]
    assert "owner_id" in bitmaps[0]["Index Cond"]
    assert bitmaps[0]["Actual Rows"] == 30, "only the owner's matches leave the index"


@pytest.mark.django_db
def test_the_selected_count_of_a_selected_substring_search_reads_only_the_owners_matches(
    postgres, client_for, super_user_x, org_x, org_y
):
    # "Select all N devices in this search" stores the search; every page then shows how many
    # are selected by counting it. That count ran without the page's plan: at 5,000,000 devices
    # 224 ms for '273' on every page view. Here: 30 of one distributor's 20,030 devices match,
    # 300 of the other's 20,300.
    Device.objects.bulk_create(
        [
            Device(owner=org_y, serial=f"146{i:05d}", order_no=_letters(i), device_type="T")
            for i in range(300)
        ]
        + [
            Device(owner=owner, serial=_letters(i), order_no=_letters(i), device_type="T")
            for owner, i in [(org_x, i) for i in range(20_000)]
            + [(org_y, i) for i in range(20_000, 40_000)]
        ]
    )
    for i in range(30):
        DeviceFactory(owner=org_x, serial=f"9146{i:04d}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE devices_device")
    client = client_for(super_user_x)
    client.post("/devices/selection/", {"action": "select_search", "serial": "146"})
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL)
    assert response.context["selected_count"] == 30
    plans = _plans_of_device_queries(captured.captured_queries, analyze=True)
    (counting,) = [plan for plan in plans if '"Aggregate"' in plan]
    bitmaps = [node for node in _nodes(counting) if node["Node Type"] == "Bitmap Index Scan"]
    assert [node["Index Name"] for node in bitmaps] == ["devices_owner_serial_lc_trgm"]
    assert "owner_id" in bitmaps[0]["Index Cond"]
    assert bitmaps[0]["Actual Rows"] == 30, "only the owner's matches leave the index"
