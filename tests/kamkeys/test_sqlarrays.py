"""One SQL parameter for many values: the same rows as ``__in`` on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest

from devices.models import Device
from kamkeys.sqlarrays import column_in
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_many_ids_select_exactly_those_devices():
    devices = DeviceFactory.create_batch(4)
    wanted = [devices[0].pk, devices[2].pk, 10**12]
    assert set(Device.objects.filter(column_in("id", wanted)).values_list("pk", flat=True)) == {
        devices[0].pk,
        devices[2].pk,
    }


def test_text_values_with_quotes_commas_and_backslashes_match_only_themselves():
    plain = DeviceFactory(serial="12345678")
    odd = DeviceFactory(serial='a"b,c\\d')
    found = Device.objects.filter(column_in("serial", ['a"b,c\\d', "a", "{}"], "text"))
    assert list(found.values_list("pk", flat=True)) == [odd.pk]
    assert plain.pk not in found.values_list("pk", flat=True)


def test_packed_ids_come_back_distinct_ascending_and_whole_below_and_past_32_bits(postgres):
    """The packed form the downloads and the API read their selections in: every id exactly,
    also those whose high half is not zero, once each and in order; no rows is empty."""
    import psycopg
    from django.db import connection

    from kamkeys.sqlarrays import packed_ids_sql, unpack_ids

    large = [7, 2**32 + 5, 3, 2**40 - 1, 7, 2**31, 1]  # sent as int8[]
    small = [7, 2**31 - 1, 3, 65_536, 7, 1]  # every id below 2^31: sent as int4[]
    query = f"SELECT {packed_ids_sql('v.id')} FROM unnest(%s::bigint[]) AS v (id)"  # noqa: S608
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        answers = []
        for ids in (large, small, []):
            cursor.execute(query, [ids], binary=True)
            answers.append(cursor.fetchone()[0])
    assert list(unpack_ids(answers[0])) == sorted(set(large))
    assert list(unpack_ids(answers[1])) == sorted(set(small))
    assert len(answers[1]) == 20 + 8 * len(set(small))  # 8 bytes an id below 2^31, not 12
    assert list(unpack_ids(answers[2])) == []


def test_a_packed_value_that_is_not_a_flat_bigint_array_is_refused():
    from kamkeys.sqlarrays import unpack_ids

    with_nulls = (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + (20).to_bytes(4, "big")
    with pytest.raises(ValueError):
        unpack_ids(with_nulls + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\xff" * 4)


@pytest.mark.parametrize(
    ("element_type", "item", "ids"),
    [(23, ">ii", [1, 5, 2**31 - 1]), (20, ">iq", [1, 2**32, 2**40 + 3])],
)
def test_packed_ids_in_postgresql_binary_form_unpack_to_every_id(element_type, item, ids):
    """The same decoding without a server: the binary int4[] and int8[] PostgreSQL sends."""
    import struct

    from kamkeys.sqlarrays import unpack_ids

    size = struct.calcsize(item) - 4
    header = struct.pack(">iiiii", 1, 0, element_type, len(ids), 1)
    body = header + b"".join(struct.pack(item, size, value) for value in ids)
    unpacked = unpack_ids(body)
    assert list(unpacked) == ids
    unpacked.append(7)  # an ordinary array afterwards: no view of it is left open
