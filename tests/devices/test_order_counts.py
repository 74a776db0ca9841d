"""An ORDER # substring search is counted from the per-(owner, order number) counts
(devices.counts.order_search_count, PostgreSQL): the counts follow every write to the devices,
and the page's count, rows and selected count equal those of the plain query, for searches the
counts answer and for those they leave to the devices (TYPE, SERIAL #, a customer's rights)."""

from __future__ import annotations

import io
import random
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import AuditContext
from devices import counts, paging
from devices.counts import order_search_count, recount
from devices.models import Device, OwnerOrderCount
from devices.search import search_q
from devices.services import transfer_device
from keyfiles.importer import import_keys
from readrights.models import ReadRight
from tests.factories import DeviceFactory, OrganizationFactory, make_member, web
from tests.keyvault.conftest import csv_bytes, factory_rows

URL = "/devices/"


def _kept() -> dict[tuple[int, str], int]:
    return {
        (o, order): n
        for o, order, n in OwnerOrderCount.objects.values_list("owner_id", "order_no", "n")
    }


def _real() -> dict[tuple[int, str], int]:
    real: dict[tuple[int, str], int] = {}
    for owner_id, order_no in Device.objects.exclude(owner=None).values_list(
        "owner_id", "order_no"
    ):
        real[(owner_id, order_no)] = real.get((owner_id, order_no), 0) + 1
    return real


@pytest.mark.django_db
def test_the_order_counts_follow_every_kind_of_write(postgres, org_x, org_y, super_user_x):
    DeviceFactory.create_batch(3, owner=org_x, order_no="5000001")
    DeviceFactory(owner=org_y, order_no="5000001")
    DeviceFactory(owner=None, order_no="5000002")
    Device.objects.bulk_create(
        [
            Device(
                serial=f"{90_000_000 + i:08d}",
                device_type="OMNIPOWER",
                owner=org_y,
                order_no=f"{7_000_000 + i % 2}",
            )
            for i in range(5)
        ]
    )
    assert _kept() == _real()
    rows = factory_rows(4)  # the importer writes with COPY on PostgreSQL
    report = import_keys(
        io.BytesIO(csv_bytes(rows)),
        owner=org_x,
        fmt="csv",
        password=None,
        context=AuditContext.command(),
    )
    assert report.ok and report.imported == 4
    assert _kept() == _real()
    device = Device.objects.filter(owner=org_x, order_no="5000001").first()
    transfer_device(device=device, new_owner=org_y, context=web(super_user_x))
    assert _kept() == _real() and _kept()[(org_y.pk, "5000001")] == 2
    Device.objects.filter(owner=org_y, order_no="7000000").update(order_no="7000001")
    assert (org_y.pk, "7000000") not in _kept()  # fallen to 0: the row is gone
    Device.objects.filter(owner=None).update(owner=org_x)
    Device.objects.filter(owner=org_y).update(owner=None)
    assert _kept() == _real()
    Device.objects.filter(owner=org_x, order_no="5000001").delete()
    assert _kept() == _real()
    assert not OwnerOrderCount.objects.filter(n__lte=0).exists()
    with connection.cursor() as cursor:  # both at once, as Django's flush between tests does
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks left to truncate
        cursor.execute("TRUNCATE devices_device, devices_ownerordercount CASCADE")
        assert not OwnerOrderCount.objects.exists()
        DeviceFactory(owner=org_x, order_no="5000001")
        cursor.execute("TRUNCATE devices_device CASCADE")
    assert not OwnerOrderCount.objects.exists()


@pytest.mark.django_db
def test_recount_rebuilds_the_order_counts(postgres, org_x):
    DeviceFactory.create_batch(2, owner=org_x, order_no="5000009")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE devices_ownerordercount SET n = 99")
    recount()
    assert _kept() == {(org_x.pk, "5000009"): 2}


@pytest.mark.django_db
def test_recount_writes_each_owners_order_counts_next_to_each_other(postgres, org_x, org_y):
    """docs/database.md, The count tables: an ORDER # count reads one owner's matching rows, 47
    ms where they lay spread over the table, 12 ms side by side. A hashed GROUP BY hands the
    groups over in no useful order; the recount writes them sorted whatever plan it gets."""
    for n in range(40):  # the two owners' orders interleaved, as years of imports leave them
        DeviceFactory(owner=org_x if n % 2 else org_y, order_no=f"50{n * 7919 % 1000:05d}")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")  # a hashed GROUP BY, as at millions of rows
        try:
            recount()
        finally:
            cursor.execute("RESET enable_sort")
        cursor.execute("SELECT owner_id, order_no FROM devices_ownerordercount ORDER BY ctid")
        on_disk = cursor.fetchall()
    assert len(on_disk) == 40
    assert on_disk == sorted(on_disk)


@pytest.mark.django_db(transaction=True)
def test_recount_vacuums_the_count_tables_so_the_old_rows_are_not_read_again(postgres, org_x):
    """The recount replaces every row; until a vacuum the old ones stay in the indexes, and the
    first ORDER # counts after it visited them too (97 ms on the bench instead of 12)."""
    DeviceFactory.create_batch(2, owner=org_x, order_no="5000010")
    recount()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL",
            [list(counts.COUNT_TABLES)],
        )
        vacuumed = {name for (name,) in cursor.fetchall()}
    assert vacuumed == {"devices_ownertypecount", "devices_ownerordercount"}
    assert _kept() == {(org_x.pk, "5000010"): 2}


@pytest.mark.django_db
def test_only_an_order_search_alone_or_with_transferred_to_is_counted_from_them(postgres, org_x):
    DeviceFactory.create_batch(3, owner=org_x, order_no="5012345")
    ids = [org_x.pk]
    assert order_search_count(ids, {"order": "123"}) == 3
    assert order_search_count(ids, {"order": "123", "owner": "distributor x"}) == 3
    assert order_search_count(ids, {"order": "123", "owner": "nobody"}) == 0
    assert order_search_count(ids, {"order": "501*"}) is None  # a prefix: the btree answers
    assert order_search_count(ids, {"order": "12"}) is None  # two characters: a prefix too
    assert order_search_count(ids, {"order": "123", "type": "multical"}) is None
    assert order_search_count(ids, {"order": "123", "serial": "000"}) is None
    assert order_search_count([], {"order": "123"}) is None


def _plain(owner_ids: list[int] | None, search: dict[str, str], visible=None):  # noqa: ANN001
    scope = visible if visible is not None else Device.objects.filter(owner_id__in=owner_ids)
    return scope.filter(search_q(search))


def _random_devices(rng: random.Random, orgs: list, count: int) -> None:  # noqa: ANN001
    """Devices with order numbers from a few shared ones (as orders repeat), some in mixed
    case, and unowned ones; serials random 8-digit numbers."""
    orders = [f"{rng.randrange(5_000_000, 5_003_000)}" for _ in range(40)] + ["A501b", "x5O1", ""]
    serials = rng.sample(range(10_000_000, 99_999_999), count)
    types = ["MULTICAL 21", "MULTICAL 403", "flowIQ 2200"]
    Device.objects.bulk_create(
        [
            Device(
                serial=f"{serial:08d}",
                order_no=rng.choice(orders),
                device_type=rng.choice(types),
                owner=rng.choice([*orgs, orgs[0], None]),
            )
            for serial in serials
        ]
    )


def _random_searches(rng: random.Random, count: int) -> list[dict[str, str]]:
    orders = list(Device.objects.values_list("order_no", flat=True).distinct())
    searches = [{"order": "501"}, {"order": "A50"}, {"order": "50*"}, {"order": "zzz"}]
    for _ in range(count):
        order = rng.choice([o for o in orders if len(o) >= 3])
        start = rng.randrange(0, len(order) - 2)
        term = order[start : start + rng.randint(3, len(order) - start)]
        search = {"order": term.upper() if rng.random() < 0.2 else term}
        extra = rng.random()
        if extra < 0.2:
            search["owner"] = rng.choice(["distributor", "x a/s", "nobody"])
        elif extra < 0.35:
            search["type"] = rng.choice(["multical", "403", "flowiq"])
        elif extra < 0.45:
            search["serial"] = f"{rng.randrange(10, 99)}"
        searches.append(search)
    return searches


@pytest.mark.django_db
@pytest.mark.parametrize(("small_result", "read_all_up_to"), [(3, 20_000), (3, 8), (2000, 20_000)])
def test_generated_order_searches_count_and_list_what_the_plain_query_does(
    postgres, client_for, super_user_x, org_x, org_y, monkeypatch, small_result, read_all_up_to
):
    # Each way of paging an ORDER # search counted from the order counts: (3, 20,000) most
    # results are read whole by their order numbers; (3, 8) those over 8 walk the sort index;
    # (2000, 20,000) all are read whole by the trigram scan after the order counts said so.
    monkeypatch.setattr(paging, "SMALL_RESULT", small_result)
    monkeypatch.setattr(counts, "READ_ALL_UP_TO", read_all_up_to)
    rng = random.Random(small_result + read_all_up_to)
    other = OrganizationFactory(name="Distributor Z")
    _random_devices(rng, [org_x, org_y, other], 400)
    client = client_for(super_user_x)
    for search in _random_searches(rng, 25):
        for sort in ("serial", "-order_no"):
            response = client.get(URL, {**search, "sort": sort, "per_page": 25})
            expected = _plain([org_x.pk], search)
            ordering = [sort, "-pk" if sort.startswith("-") else "pk"]
            if sort == "-order_no":
                ordering = ["-order_no", "-serial", "-pk"]
            assert response.context["total"] == expected.count(), search
            shown = [row.record.pk for row in response.context["table"].page.object_list]
            assert shown == list(expected.order_by(*ordering).values_list("pk", flat=True)[:25]), (
                search,
                sort,
            )
        client.post("/devices/selection/", {"action": "select_search", **search})
        page = client.get(URL)
        assert page.context["selected_count"] == _plain([org_x.pk], search).count(), search
        client.post("/devices/selection/", {"action": "clear"})


@pytest.mark.django_db
@pytest.mark.parametrize("read_all_up_to", [20_000, 10])
def test_next_pages_of_a_large_order_search_are_the_plain_querys(
    postgres, client_for, super_user_x, org_x, monkeypatch, read_all_up_to
):
    monkeypatch.setattr(paging, "SMALL_RESULT", 3)
    monkeypatch.setattr(counts, "READ_ALL_UP_TO", read_all_up_to)
    for i in range(30):
        DeviceFactory(owner=org_x, order_no=f"5{i % 4}501")
    DeviceFactory.create_batch(5, owner=org_x, order_no="7777777")
    client = client_for(super_user_x)
    expected = list(
        _plain([org_x.pk], {"order": "501"}).order_by("serial", "pk").values_list("pk", flat=True)
    )
    response = client.get(URL, {"order": "501", "per_page": 25})
    assert response.context["total"] == 30
    shown = [row.record.pk for row in response.context["table"].page.object_list]
    after = response.context["table"].page.next_cursor
    following = client.get(URL, {"order": "501", "per_page": 25, "page": 2, "after": after})
    shown += [row.record.pk for row in following.context["table"].page.object_list]
    assert shown == expected


@pytest.mark.django_db
def test_a_customer_sees_the_count_of_their_own_devices_not_the_owners(
    postgres, client_for, org_x, customer_org, super_user_x
):
    devices = DeviceFactory.create_batch(6, owner=org_x, order_no="5050101")
    customer = make_member(customer_org, email="c@utility.example")
    for device in devices[:2]:
        ReadRight.objects.create(device=device, grantee=customer, granted_by=super_user_x)
    client = client_for(customer)
    assert client.get(URL, {"order": "501"}).context["total"] == 2


@pytest.mark.django_db
def test_a_mid_size_order_search_reads_its_matches_by_order_number_not_along_the_sort_index(
    postgres, client_for, super_user_x, org_x, monkeypatch
):
    monkeypatch.setattr(paging, "SMALL_RESULT", 5)
    for i in range(30):
        DeviceFactory(owner=org_x, order_no=f"5{i % 3}501")
    with CaptureQueriesContext(connection) as captured:
        response = client_for(super_user_x).get(URL, {"order": "501", "sort": "-order_no"})
    assert response.context["total"] == 30
    queries = [q["sql"] for q in captured.captured_queries]
    page = [i for i, sql in enumerate(queries) if '"order_no" = ANY(' in sql and "LIMIT" in sql]
    assert len(page) == 1
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT plan_check")
        cursor.execute(queries[page[0] - 1])  # the SET LOCAL it ran with
        cursor.execute(f"EXPLAIN {queries[page[0]]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("ROLLBACK TO SAVEPOINT plan_check")
    assert "Bitmap Heap Scan on devices_device" in plan
    assert not re.search(r"(?<!Bitmap )Index (Only )?Scan", plan), plan  # no walk
