"""manage.py rotate_kek: rewraps under the newest KEK in batches, survives a crash midway."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from keyvault import rotation
from keyvault.models import DeviceKey
from keyvault.services import store_device_keys_bulk, unwrap
from tests.factories import DeviceFactory
from tests.keyvault.conftest import add_kek_v2


@pytest.fixture
def stored_keys(db) -> dict[int, bytes]:  # noqa: ANN001
    """25 devices with a DEK and a GPK1 each, wrapped under KEK v1: {key row id: plain}."""
    devices = DeviceFactory.create_batch(25)
    plain = {d.pk: {"DEK": os.urandom(16), "GPK1": os.urandom(16)} for d in devices}
    store_device_keys_bulk([(d, plain[d.pk]) for d in devices])
    return {
        row.pk: plain[row.device_id][row.name] for row in DeviceKey.objects.select_related("device")
    }


def assert_all_unwrap(stored_keys: dict[int, bytes], version: int) -> None:
    rows = DeviceKey.objects.select_related("device")
    assert {row.kek_version for row in rows} == {version}
    assert {row.pk: unwrap(row) for row in rows} == stored_keys


def test_rotation_rewraps_every_key_under_the_newest_kek(settings, stored_keys):
    add_kek_v2(settings)
    out = io.StringIO()
    call_command("rotate_kek", "--batch-size", "7", "--no-progress", stdout=out)
    assert "Rewrapped 50 key(s) under KEK version 2" in out.getvalue()
    assert_all_unwrap(stored_keys, 2)
    event = AuditEvent.objects.get(action="rotate")
    assert event.count == 50 and event.detail["kek_version"] == 2


def test_a_second_rotation_has_nothing_to_do(settings, stored_keys):
    add_kek_v2(settings)
    call_command("rotate_kek", "--no-progress", stdout=io.StringIO())
    before = {row.pk: bytes(row.wrapped) for row in DeviceKey.objects.all()}
    out = io.StringIO()
    call_command("rotate_kek", "--no-progress", stdout=out)
    assert "Rewrapped 0 key(s)" in out.getvalue()
    assert "50 were already under it" in out.getvalue()
    assert {row.pk: bytes(row.wrapped) for row in DeviceKey.objects.all()} == before


def test_a_rotation_interrupted_midway_completes_on_rerun(settings, stored_keys, monkeypatch):
    add_kek_v2(settings)
    real_wrap = rotation.wrap_key
    calls = {"n": 0}

    def crash_in_the_third_batch(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 25:  # batches of 10: two committed, the third dies halfway
            raise KeyboardInterrupt("operator pressed Ctrl-C")
        return real_wrap(*args, **kwargs)

    monkeypatch.setattr(rotation, "wrap_key", crash_in_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        call_command("rotate_kek", "--batch-size", "10", "--no-progress", stdout=io.StringIO())
    versions = list(DeviceKey.objects.values_list("kek_version", flat=True))
    assert versions.count(2) == 20  # the half-done batch was rolled back
    assert versions.count(1) == 30

    monkeypatch.setattr(rotation, "wrap_key", real_wrap)
    out = io.StringIO()
    call_command("rotate_kek", "--batch-size", "10", "--no-progress", stdout=out)
    assert "Rewrapped 30 key(s)" in out.getvalue()
    assert_all_unwrap(stored_keys, 2)


def test_a_tampered_key_is_left_alone_and_reported_while_the_rest_rotates(settings, stored_keys):
    add_kek_v2(settings)
    victim = DeviceKey.objects.order_by("pk")[3]
    DeviceKey.objects.filter(pk=victim.pk).update(wrapped=b"\x00" + bytes(24))
    with pytest.raises(CommandError, match="1 key"):
        call_command("rotate_kek", "--batch-size", "4", "--no-progress", stdout=io.StringIO())
    assert DeviceKey.objects.filter(kek_version=2).count() == 49
    assert DeviceKey.objects.get(pk=victim.pk).kek_version == 1
    assert AuditEvent.objects.filter(action="unwrap_failed").count() == 1


def test_a_batch_size_below_one_is_refused(stored_keys):
    with pytest.raises(CommandError, match="batch-size"):
        call_command("rotate_kek", "--batch-size", "0", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_background_writer_survives_an_interruption_too(
    postgres, settings, monkeypatch
):
    devices = DeviceFactory.create_batch(30)
    plain = {d.pk: os.urandom(16) for d in devices}
    store_device_keys_bulk([(d, {"DEK": plain[d.pk]}) for d in devices])
    add_kek_v2(settings)
    real_wrap = rotation.wrap_key
    calls = {"n": 0}

    def crash_in_the_third_batch(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt("the machine went down")
        return real_wrap(*args, **kwargs)

    monkeypatch.setattr(rotation, "wrap_key", crash_in_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        rotation.rotate_keys(batch_size=10)
    assert DeviceKey.objects.filter(kek_version=2).count() == 20
    monkeypatch.setattr(rotation, "wrap_key", real_wrap)
    assert rotation.rotate_keys(batch_size=10).rewrapped == 10
    rows = DeviceKey.objects.select_related("device")
    assert {row.device_id: unwrap(row) for row in rows} == plain
    assert {row.kek_version for row in rows} == {2}
