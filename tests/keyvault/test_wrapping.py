"""Keys at rest: wrapped per device and key name, tamper-evident, streamed back by id and serial."""

from __future__ import annotations

import base64
import os
import stat
import sys

import pytest

from audit.models import AuditEvent
from keyvault import kek
from keyvault.crypto import KeyUnwrapError
from keyvault.kek import KekRingError, StaticKekRing, parse_ring
from keyvault.models import DeviceKey
from keyvault.services import (
    iter_stored_keys,
    store_device_keys,
    store_device_keys_bulk,
    unwrap,
)
from tests.factories import DeviceFactory
from tests.processes import run_python

DEK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


@pytest.mark.django_db
def test_a_stored_key_unwraps_to_its_original_bytes_and_is_not_stored_plain():
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK, "GPK1": b"\x07" * 16})
    row = DeviceKey.objects.get(device=device, name="DEK")
    assert DEK not in bytes(row.wrapped)
    assert row.kek_version == 1
    assert unwrap(row) == DEK
    assert unwrap(DeviceKey.objects.get(device=device, name="GPK1")) == b"\x07" * 16


@pytest.mark.django_db
def test_keys_whose_length_is_not_a_multiple_of_eight_are_wrapped_with_padding():
    device = DeviceFactory()
    odd = b"\x01\x02\x03\x04\x05"
    store_device_keys(device, {"ODD": odd})
    assert unwrap(DeviceKey.objects.get(device=device, name="ODD")) == odd


@pytest.mark.django_db
def test_storing_again_replaces_the_key_instead_of_adding_a_second_one():
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK})
    store_device_keys(device, {"DEK": b"\x11" * 16})
    assert DeviceKey.objects.filter(device=device).count() == 1
    assert unwrap(DeviceKey.objects.get(device=device)) == b"\x11" * 16


@pytest.mark.django_db
def test_a_tampered_wrapped_key_is_detected_and_audited():
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK})
    row = DeviceKey.objects.get(device=device)
    tampered = bytearray(row.wrapped)
    tampered[5] ^= 0x01
    DeviceKey.objects.filter(pk=row.pk).update(wrapped=bytes(tampered))
    row.refresh_from_db()
    with pytest.raises(KeyUnwrapError) as excinfo:
        unwrap(row)
    assert DEK.hex() not in str(excinfo.value).lower()
    event = AuditEvent.objects.get(action="unwrap_failed")
    assert event.object_ids == [device.pk]
    assert event.outcome == "error"


@pytest.mark.django_db
def test_a_wrapped_key_copied_onto_another_device_does_not_unwrap():
    first, second = DeviceFactory(), DeviceFactory()
    store_device_keys(first, {"DEK": DEK})
    store_device_keys(second, {"DEK": b"\x22" * 16})
    stolen = DeviceKey.objects.get(device=first).wrapped
    DeviceKey.objects.filter(device=second).update(wrapped=stolen)
    with pytest.raises(KeyUnwrapError):
        unwrap(DeviceKey.objects.get(device=second))


@pytest.mark.django_db
def test_a_wrapped_key_copied_onto_another_key_name_does_not_unwrap():
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK, "GPK1": b"\x33" * 16})
    dek_row = DeviceKey.objects.get(device=device, name="DEK")
    DeviceKey.objects.filter(device=device, name="GPK1").update(wrapped=dek_row.wrapped)
    with pytest.raises(KeyUnwrapError):
        unwrap(DeviceKey.objects.get(device=device, name="GPK1"))


@pytest.mark.django_db
def test_a_key_claiming_another_kek_version_does_not_unwrap(settings):
    from tests.keyvault.conftest import add_kek_v2

    add_kek_v2(settings)
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK})
    DeviceKey.objects.filter(device=device).update(kek_version=1)
    with pytest.raises(KeyUnwrapError):
        unwrap(DeviceKey.objects.get(device=device))


def test_the_newest_kek_is_the_highest_version():
    ring = StaticKekRing({1: b"a" * 32, 3: b"c" * 32, 2: b"b" * 32})
    assert ring.current() == (3, b"c" * 32)
    assert ring.get(2) == b"b" * 32
    with pytest.raises(KekRingError):
        ring.get(4)


@pytest.mark.parametrize(
    "entries",
    [
        [],
        ["# only a comment"],
        ["1-" + base64.b64encode(b"k" * 32).decode()],
        ["x:" + base64.b64encode(b"k" * 32).decode()],
        ["1:not base64!"],
        ["1:" + base64.b64encode(b"short").decode()],
        ["1:" + base64.b64encode(b"k" * 32).decode(), "1:" + base64.b64encode(b"j" * 32).decode()],
    ],
)
def test_a_malformed_ring_is_a_clear_error_that_never_shows_the_key(entries):
    with pytest.raises(KekRingError) as excinfo:
        parse_ring(entries, where="KAMKEYS_KEKS")
    assert "KAMKEYS_KEKS" in str(excinfo.value)
    assert base64.b64encode(b"k" * 32).decode() not in str(excinfo.value)


def test_the_development_kek_file_is_created_once_with_owner_only_permissions(settings, tmp_path):
    path = tmp_path / "nested" / "dir" / "dev.kek"
    settings.KAMKEYS_KEKS = ""
    settings.KAMKEYS_KEK_FILE = str(path)
    settings.KAMKEYS_CREATE_DEV_KEK = True
    kek.reset_cache()
    version, first = kek.get_kek_source().current()
    assert version == 1 and len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kek.reset_cache()
    assert kek.get_kek_source().current() == (1, first)


def test_a_missing_kek_file_is_an_error_when_creating_one_is_not_allowed(settings, tmp_path):
    settings.KAMKEYS_KEKS = ""
    settings.KAMKEYS_KEK_FILE = str(tmp_path / "absent.kek")
    settings.KAMKEYS_CREATE_DEV_KEK = False
    kek.reset_cache()
    with pytest.raises(KekRingError, match="does not exist"):
        kek.get_kek_source()


@pytest.mark.parametrize("ring", [None, "1:dG9vIHNob3J0"])
def test_production_refuses_to_start_without_a_usable_kek(tmp_path, ring):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "KAMKEYS_ENV": "production",
        "SECRET_KEY": "s" * 60,
        "ALLOWED_HOSTS": "keys.example",
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/kk",
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "KAMKEYS_SKIP_REDIS_CHECK": "1",
        "EMAIL_HOST": "smtp.example",
        "KAMKEYS_SITE_URL": "https://keys.example",
        "DJANGO_SETTINGS_MODULE": "kamkeys.settings",
        "KAMKEYS_VAR_DIR": str(tmp_path),
    }
    if ring:
        env["KAMKEYS_KEKS"] = ring
    result = run_python(
        [sys.executable, "-c", "import django; django.setup()"], env=env, cwd=os.getcwd()
    )
    assert result.returncode != 0
    assert "KEK" in result.stderr


def test_the_wrapping_key_is_standard_hkdf_sha256_bound_to_serial_name_and_version():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from keyvault.crypto import HKDF_SALT, derive_wrapping_key

    kek_bytes = bytes(range(32))
    info = b"kamkeys/devicekey|serial=00012345|name=GPK2|kek=7"
    expected = HKDF(hashes.SHA256(), 32, HKDF_SALT, info).derive(kek_bytes)
    assert derive_wrapping_key(kek_bytes, "00012345", "GPK2", 7) == expected
    assert derive_wrapping_key(kek_bytes, "00012346", "GPK2", 7) != expected


@pytest.mark.django_db
def test_the_custody_stream_takes_ids_and_serials_and_yields_each_devices_keys_in_id_order():
    devices = DeviceFactory.create_batch(5)
    store_device_keys_bulk([(device, {"DEK": DEK, "GPK1": b"\x07" * 16}) for device in devices[1:]])
    serials = {device.pk: device.serial for device in devices}
    seen = list(iter_stored_keys(serials, batch_size=2))
    assert [device_id for device_id, _keys in seen] == sorted(serials)
    assert seen[0][1] == {}  # no keys stored
    assert all(list(keys) == ["DEK", "GPK1"] and keys["DEK"] == DEK for _id, keys in seen[1:])


@pytest.mark.django_db
def test_the_custody_stream_stops_at_a_key_bound_to_another_serial_and_audits_it():
    device = DeviceFactory()
    store_device_keys(device, {"DEK": DEK})
    with pytest.raises(KeyUnwrapError):
        list(iter_stored_keys({device.pk: "99999999"}))
    assert AuditEvent.objects.get(action="unwrap_failed").object_ids == [device.pk]
