"""The download's key stream: device columns joined to their keys, unwrapped batch by batch."""

from __future__ import annotations

import os

import pytest

from audit.models import AuditEvent
from devices.models import Device
from keyfiles.keystream import DEVICE_FIELDS, iter_plain_keys, selected_ids
from keyvault.crypto import KeyUnwrapError
from keyvault.models import DeviceKey
from keyvault.services import store_device_keys_bulk
from tests.factories import DeviceFactory

DEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


@pytest.mark.django_db
def test_the_plain_key_stream_covers_every_device_across_batches():
    devices = DeviceFactory.create_batch(7)
    expected = {device.serial: os.urandom(16) for device in devices}
    store_device_keys_bulk([(device, {"DEK": expected[device.serial]}) for device in devices])
    keyless = DeviceFactory()
    selection = Device.objects.filter(pk__in=[d.pk for d in devices] + [keyless.pk])
    seen = {row.serial: keys for row, keys in iter_plain_keys(selection, batch_size=3)}
    assert seen.pop(keyless.serial) == {}
    assert seen == {serial: {"DEK": key} for serial, key in expected.items()}


@pytest.mark.django_db
def test_the_plain_key_stream_stops_at_a_tampered_key_and_never_yields_it():
    devices = DeviceFactory.create_batch(3)
    store_device_keys_bulk([(device, {"DEK": DEK}) for device in devices])
    DeviceKey.objects.filter(device=devices[1]).update(wrapped=b"\x00" + b"\x01" * 24)
    yielded = []
    with pytest.raises(KeyUnwrapError):
        for row, _keys in iter_plain_keys(Device.objects.all(), batch_size=10):
            yielded.append(row.serial)
    assert yielded == []  # a batch is unwrapped whole before any of it is handed out
    assert AuditEvent.objects.filter(action="unwrap_failed").count() == 1


@pytest.mark.django_db
def test_a_tampered_key_deep_in_a_large_stream_is_audited_and_the_connection_stays_usable():
    devices = DeviceFactory.create_batch(9)
    store_device_keys_bulk([(device, {"DEK": DEK}) for device in devices])
    victim = sorted(devices, key=lambda device: device.pk)[6]
    DeviceKey.objects.filter(device=victim).update(wrapped=b"\x00" + b"\x01" * 24)
    yielded = []
    with pytest.raises(KeyUnwrapError):
        for row, _keys in iter_plain_keys(Device.objects.all(), batch_size=2):
            yielded.append(row.id)
    assert victim.pk not in yielded and len(yielded) == 6
    failure = AuditEvent.objects.get(action="unwrap_failed")
    assert failure.object_ids == [victim.pk]


@pytest.mark.django_db
def test_a_stream_cut_into_several_queries_yields_every_device_once_in_order(monkeypatch):
    monkeypatch.setattr("keyfiles.keystream.IDS_PER_QUERY", 3)
    devices = DeviceFactory.create_batch(8)
    five = {name: os.urandom(16) for name in ("DEK", "GPK1")}
    store_device_keys_bulk([(device, five) for device in devices])
    seen = list(iter_plain_keys(Device.objects.all(), batch_size=2))
    assert [row.id for row, _keys in seen] == sorted(d.pk for d in devices)
    assert all(keys == five for _row, keys in seen)


@pytest.mark.django_db
def test_the_selected_ids_are_distinct_and_ascending_even_when_a_join_repeats_a_device():
    devices = DeviceFactory.create_batch(4)
    store_device_keys_bulk([(device, {"DEK": DEK, "GPK1": DEK}) for device in devices])
    repeated = Device.objects.filter(keys__name__in=["DEK", "GPK1"])  # each device twice
    assert repeated.count() == 8
    assert list(selected_ids(repeated)) == sorted(d.pk for d in devices)


@pytest.mark.django_db
def test_the_selected_ids_of_a_selection_that_can_match_nothing_are_none():
    DeviceFactory()
    assert list(selected_ids(Device.objects.filter(pk__in=[]))) == []
    assert list(selected_ids(Device.objects.none())) == []


# --- the KEK ring --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_device_whose_keys_straddle_a_batch_boundary_keeps_all_its_keys():
    devices = DeviceFactory.create_batch(4)
    five = {name: os.urandom(16) for name in ("DEK", "GPK1", "GPK2", "GPK3", "GPK4")}
    store_device_keys_bulk([(device, five) for device in devices])
    seen = list(iter_plain_keys(Device.objects.all(), batch_size=7))
    assert [row.serial for row, _keys in seen] == sorted(d.serial for d in devices)
    assert all(keys == five for _row, keys in seen)


@pytest.mark.django_db
def test_the_stream_by_known_ids_skips_devices_removed_meanwhile():
    devices = DeviceFactory.create_batch(5)
    store_device_keys_bulk([(device, {"DEK": DEK}) for device in devices])
    ids = sorted(device.pk for device in devices)
    Device.objects.filter(pk__in=ids[1:3]).delete()  # a whole batch of two disappears
    seen = list(iter_plain_keys(Device.objects.all(), batch_size=2, ids=ids))
    assert [row.id for row, _keys in seen] == [ids[0], ids[3], ids[4]]
    assert all(keys == {"DEK": DEK} for _row, keys in seen)


@pytest.mark.django_db(transaction=True)
def test_a_download_stream_leaves_the_connection_as_it_found_it(postgres):
    """The stream steers the planner for itself only: finished or abandoned midway, the
    connection's next queries run with the normal settings and outside any transaction."""
    from django.db import connection

    devices = DeviceFactory.create_batch(6)
    store_device_keys_bulk([(device, {"DEK": DEK}) for device in devices])
    assert len(list(iter_plain_keys(Device.objects.all(), batch_size=2))) == 6
    abandoned = iter_plain_keys(Device.objects.all(), batch_size=2)
    next(abandoned)
    abandoned.close()
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_hashjoin")
        assert cursor.fetchone() == ("on",)
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] != "0"
    assert connection.connection.info.transaction_status == 0  # idle, not inside a transaction


def test_the_stream_gives_files_the_device_columns_of_the_model_but_never_the_code_hash():
    assert (
        tuple(
            field.column
            for field in Device._meta.concrete_fields
            if field.name not in {"device_code_hash", "created_at", "changed_at"}
        )
        == DEVICE_FIELDS
    )
    assert "device_code_hash" not in DEVICE_FIELDS
