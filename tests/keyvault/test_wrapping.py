"""Keys at rest: wrapped per device and key name, tamper-evident, streamed back in batches."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest

from audit.models import AuditEvent
from devices.models import Device
from keyvault import kek
from keyvault.crypto import KeyUnwrapError
from keyvault.kek import KekRingError, StaticKekRing, parse_ring
from keyvault.models import DeviceKey
from keyvault.services import (
    iter_plain_keys,
    store_device_keys,
    store_device_keys_bulk,
    unwrap,
)
from tests.factories import DeviceFactory

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


@pytest.mark.django_db
def test_the_plain_key_stream_covers_every_device_across_batches():
    devices = DeviceFactory.create_batch(7)
    expected = {device.serial: os.urandom(16) for device in devices}
    store_device_keys_bulk([(device, {"DEK": expected[device.serial]}) for device in devices])
    keyless = DeviceFactory()
    selection = Device.objects.filter(pk__in=[d.pk for d in devices] + [keyless.pk])
    seen = {row["serial"]: keys for row, keys in iter_plain_keys(selection, batch_size=3)}
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
            yielded.append(row["serial"])
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
            yielded.append(row["id"])
    assert victim.pk not in yielded and len(yielded) == 6
    failure = AuditEvent.objects.get(action="unwrap_failed")
    assert failure.object_ids == [victim.pk]


# --- the KEK ring --------------------------------------------------------------------------------


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
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
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


def test_device_code_hashes_are_keyed_and_bound_to_the_serial(settings):
    import hashlib
    import hmac as std_hmac

    from devices.device_codes import check_device_code, hash_device_code

    pepper = hashlib.sha256(b"kamkeys device code pepper|" + settings.SECRET_KEY.encode()).digest()
    expected = std_hmac.new(pepper, b"00012345|42", hashlib.sha256).hexdigest()
    assert hash_device_code("00012345", "42") == "h1$" + expected
    assert check_device_code("00012345", "42", "h1$" + expected)
    assert not check_device_code("00012346", "42", "h1$" + expected)


@pytest.mark.django_db
def test_a_device_whose_keys_straddle_a_batch_boundary_keeps_all_its_keys():
    devices = DeviceFactory.create_batch(4)
    five = {name: os.urandom(16) for name in ("DEK", "GPK1", "GPK2", "GPK3", "GPK4")}
    store_device_keys_bulk([(device, five) for device in devices])
    seen = list(iter_plain_keys(Device.objects.all(), batch_size=7))
    assert [row["serial"] for row, _keys in seen] == sorted(d.serial for d in devices)
    assert all(keys == five for _row, keys in seen)


@pytest.mark.django_db
def test_the_stream_by_known_ids_skips_devices_removed_meanwhile():
    devices = DeviceFactory.create_batch(5)
    store_device_keys_bulk([(device, {"DEK": DEK}) for device in devices])
    ids = sorted(device.pk for device in devices)
    Device.objects.filter(pk__in=ids[1:3]).delete()  # a whole batch of two disappears
    seen = list(iter_plain_keys(Device.objects.all(), batch_size=2, ids=ids))
    assert [row["id"] for row, _keys in seen] == [ids[0], ids[3], ids[4]]
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
