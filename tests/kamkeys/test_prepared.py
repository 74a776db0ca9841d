"""Queries compiled once per process run exactly what the ORM would, with each call's values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from devices.models import Device
from kamkeys.prepared import PreparedQuery
from kamkeys.sqlarrays import column_in
from tests.factories import DeviceFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _owned_after(owner_ids: list[int], since: datetime):  # noqa: ANN202
    return (
        Device.objects.filter(owner_id__in=owner_ids, created_at__gt=since)
        .order_by("serial")
        .values_list("serial", flat=True)
    )


def test_each_call_gets_its_own_values_and_the_orm_sql(postgres):
    one, two, three = OrganizationFactory.create_batch(3)
    DeviceFactory(owner=one, serial="10000001")
    DeviceFactory(owner=two, serial="10000002")
    DeviceFactory(owner=three, serial="10000003")
    prepared = PreparedQuery(_owned_after)
    long_ago = timezone.now() - timedelta(days=1)
    for owners, since, expected in [
        ([one.pk], long_ago, ["10000001"]),
        ([two.pk], long_ago, ["10000002"]),  # same shape, other values: not the first answer
        ([one.pk, three.pk], long_ago, ["10000001", "10000003"]),  # another length
        ([one.pk, two.pk], timezone.now() + timedelta(days=1), []),  # a later clock
    ]:
        assert [row[0] for row in prepared.run(owner_ids=owners, since=since)] == expected
        sql, params = _owned_after(owners, since).query.sql_with_params()
        assert prepared.sql_with_params(owner_ids=owners, since=since) == (sql, tuple(params))
    assert len(prepared._compiled) == 2  # one compilation per length of owner_ids


def test_a_list_sent_as_one_array_is_compiled_once_for_any_length(postgres):
    devices = DeviceFactory.create_batch(5)
    ids = [d.pk for d in devices]

    def serials(ids: list[int]):  # noqa: ANN202
        return Device.objects.filter(column_in("id", ids)).order_by("pk").values_list("serial")

    prepared = PreparedQuery(serials, arrays=("ids",))
    for wanted in (ids[:1], ids[1:4], ids):
        assert [r[0] for r in prepared.run(ids=wanted)] == [
            d.serial for d in devices if d.pk in wanted
        ]
    assert len(prepared._compiled) == 1


def test_a_query_that_reads_the_clock_itself_is_never_frozen(postgres, caplog):
    """A builder that takes a value from elsewhere cannot be compiled: it runs through the ORM
    each time, so a right that expired since is not seen as live."""
    device = DeviceFactory(created_at=timezone.now())

    def created_before_now(pk: int):  # noqa: ANN202 - the clock is not one of its values
        return Device.objects.filter(pk=pk, created_at__lt=timezone.now()).values_list("pk")

    prepared = PreparedQuery(created_before_now)
    assert prepared.run(pk=device.pk) == [(device.pk,)]
    assert "not prepared" in caplog.text
    Device.objects.filter(pk=device.pk).update(created_at=timezone.now() + timedelta(hours=1))
    assert prepared.run(pk=device.pk) == []


def test_a_value_written_into_the_sql_text_is_refused(postgres):
    DeviceFactory(serial="20000001")

    def limited(n: int):  # noqa: ANN202 - a slice is written into the SQL as LIMIT n
        return Device.objects.order_by("pk").values_list("serial")[:n]

    prepared = PreparedQuery(limited)
    DeviceFactory(serial="20000002")
    assert [r[0] for r in prepared.run(n=1)] == ["20000001"]
    assert [r[0] for r in prepared.run(n=2)] == ["20000001", "20000002"]


def test_only_postgresql_runs_compiled_sql_and_both_give_the_same_rows():
    from django.db import connection

    DeviceFactory(serial="30000001", owner=None)
    prepared = PreparedQuery(_owned_after)
    owner = OrganizationFactory()
    DeviceFactory(serial="30000002", owner=owner)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert prepared.run(owner_ids=[owner.pk], since=since) == [("30000002",)]
    assert bool(prepared._compiled) is (connection.vendor == "postgresql")


def test_a_list_of_strings_keeps_its_values_apart(postgres):
    from devices.counts import owned_count

    owner = OrganizationFactory()
    DeviceFactory.create_batch(2, owner=owner, device_type="MULTICAL 21")
    DeviceFactory(owner=owner, device_type="flowIQ 2200")
    assert owned_count([owner.pk]) == 3
    assert owned_count([owner.pk], ["MULTICAL 21"]) == 2
    assert owned_count([owner.pk], ["flowIQ 2200"]) == 1
    assert owned_count([owner.pk], ["flowIQ 2200", "MULTICAL 21"]) == 3
    assert owned_count([owner.pk], ["OMNIPOWER"]) == 0


def test_every_query_of_a_super_users_page_is_compiled(
    postgres, client_for, super_user_x, customer
):
    """A query that cannot be compiled still answers right (through the ORM), so only this test
    notices that it lost its point: every prepared query the pages met was compiled."""
    from kamkeys import prepared
    from readrights.models import ReadRight

    devices = DeviceFactory.create_batch(3, owner=super_user_x.memberships.get().organization)
    ReadRight.objects.create(device=devices[0], grantee=customer, granted_by=super_user_x)
    client = client_for(super_user_x)
    for query in ({}, {"type": "multical"}, {"per_page": 100}):
        assert client.get("/devices/", query).status_code == 200
    client_for(customer).get("/devices/")
    met = [q for q in prepared.EVERY if q._compiled and not q.build.__module__.startswith("tests.")]
    assert len(met) >= 6  # sessions, roles, rights elsewhere, counts of types, selection, readers
    assert [query.build.__qualname__ for query in met if query.unprepared] == []
