"""Download files: import → export → an independent decrypt recovers every serial and key."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
import pyzipper
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db.models import Q

from accounts.models import Organization
from audit.context import AuditContext
from audit.models import AuditEvent
from devices.models import Device
from keyfiles.downloads import FORMATS, build_download
from keyfiles.forms import DownloadForm
from keyfiles.passwords import validate_file_password
from keyvault.services import store_device_keys
from readrights.models import ReadRight
from tests.factories import DeviceFactory, login, store_selection, web
from tests.keyvault.conftest import csv_bytes, factory_rows

ZIP_PASSWORD = "violet tractor umbrella 42"
KEM_PASSWORD = "Kem-Pass_2024!"


def import_rows(tmp_path: Path, owner: Organization, rows: list[dict[str, str]]) -> None:
    source = tmp_path / "factory.csv"
    source.write_bytes(csv_bytes(rows))
    call_command(
        "import_keys", str(source), "--owner", owner.name, "--no-progress", stdout=io.StringIO()
    )


def export(tmp_path: Path, fmt: str, password: str, *selection: str) -> bytes:
    secret = tmp_path / f"{fmt}.pw"
    secret.write_text(password + "\n")
    target = tmp_path / f"out-{fmt}.zip"
    call_command(
        "export_keys",
        "--format",
        fmt,
        "--password-file",
        str(secret),
        "--output",
        str(target),
        *selection,
        stdout=io.StringIO(),
    )
    return target.read_bytes()


def read_zip(data: bytes, password: str) -> dict[str, bytes]:
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        archive.setpassword(password.encode())
        return {name: archive.read(name) for name in archive.namelist()}


def kem_plaintext(data: bytes, password: str) -> bytes:
    """Decrypt the way existing readers do: key = IV = password zero-padded, no unpadding,
    then strip control bytes."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert len(names) == 1 and names[0].endswith(".kem") and "/" not in names[0]
    document = archive.read(names[0]).decode("ascii")
    line = next(line for line in document.splitlines() if "<CipherValue>" in line)
    cipher_b64 = re.search(r"<CipherValue>([A-Za-z0-9+/=]+)</CipherValue>", line).group(1)
    key = password.encode().ljust(16, b"\0")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key)).decryptor()
    raw = decryptor.update(base64.b64decode(cipher_b64)) + decryptor.finalize()
    return bytes(byte for byte in raw if byte >= 0x20)


def meters_of(plaintext: bytes) -> list[dict[str, str]]:
    text = plaintext.decode("ascii")
    return [
        dict(re.findall(r"<(\w+)>([^<]*)</\1>", body))
        for body in re.findall(r"<Meter>(.*?)</Meter>", text)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 1000])
def test_encrypted_zip_round_trip_recovers_every_serial_and_key(tmp_path, org_x, count, settings):
    # Each AES member costs a PBKDF2: keep the meter files to the first case.
    settings.KAMKEYS_ZIP_METER_FILES_LIMIT = 1
    rows = factory_rows(count, gpk=True)
    import_rows(tmp_path, org_x, rows)
    files = read_zip(export(tmp_path, "zip", ZIP_PASSWORD, "--owner", org_x.name), ZIP_PASSWORD)

    table = list(csv.DictReader(io.StringIO(files["keys.csv"].decode())))
    recovered = {(r["serial"], r["key_name"]): r["key_hex"].lower() for r in table}
    expected = {(r["serial"], "DEK"): r["dek"].lower() for r in rows}
    expected |= {(r["serial"], "GPK1"): r["gpk1"].lower() for r in rows}
    assert recovered == expected
    assert list(table[0]) == ["serial", "type", "order_no", "key_name", "key_hex"]

    documents = json.loads(files["keys.json"])
    assert {d["serial"]: d["keys"]["DEK"].lower() for d in documents} == {
        r["serial"]: r["dek"].lower() for r in rows
    }
    readme = files["README.txt"].decode()
    assert "7-Zip" in readme and "WinZip" in readme
    meter_files = [name for name in files if name.startswith("wmbusmeters/")]
    assert len(meter_files) == (1 if count == 1 else 0)
    if count > 1:
        assert "while IFS=, read" in readme
        return
    first = rows[0]
    assert files[f"wmbusmeters/{first['serial']}"].decode().splitlines() == [
        f"name=MC21_{first['serial']}",
        "driver=multical21",
        f"id={first['serial']}",
        f"key={first['dek'].upper()}",
    ]


@pytest.mark.django_db
def test_large_selections_get_a_shell_loop_instead_of_meter_files(tmp_path, org_x, settings):
    settings.KAMKEYS_ZIP_METER_FILES_LIMIT = 5
    import_rows(tmp_path, org_x, factory_rows(6))
    files = read_zip(export(tmp_path, "zip", ZIP_PASSWORD, "--all"), ZIP_PASSWORD)
    assert not [name for name in files if name.startswith("wmbusmeters/")]
    readme = files["README.txt"].decode()
    assert "6 meters" in readme and "keys.csv" in readme and "while IFS=, read" in readme


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 1000])
def test_kem_round_trip_recovers_every_serial_and_key_the_way_readers_decrypt(
    tmp_path, org_x, count
):
    rows = factory_rows(count)
    import_rows(tmp_path, org_x, rows)
    data = export(tmp_path, "kem", KEM_PASSWORD, "--owner", org_x.customer_number)
    plaintext = kem_plaintext(data, KEM_PASSWORD)

    assert plaintext.startswith(b"<MetersInOrder")
    assert b"\n" not in plaintext and plaintext.isascii()
    meters = meters_of(plaintext)
    assert {m["SerialNo"]: m["DEK"].lower() for m in meters} == {
        r["serial"]: r["dek"].lower() for r in rows
    }
    for meter in meters:
        assert list(meter) == [
            "MeterName",
            "ConsumptionType",
            "MeterNo",
            "SerialNo",
            "VendorId",
            "ConfigNo",
            "TypeNo",
            "DEK",
        ]
        assert all(meter[name] for name in meter if name not in {"ConfigNo", "TypeNo"})
        assert re.fullmatch(r"\d{8}", meter["SerialNo"]) and ":" not in meter["MeterNo"]
    assert meters[0]["MeterName"] == "MC21" and meters[0]["SerialNo"] == "00000001"
    if count > 1:
        assert meters[1]["MeterName"] == "MC403"


@pytest.mark.django_db
def test_kem_file_envelope_matches_what_readers_look_for(tmp_path, org_x):
    import_rows(tmp_path, org_x, factory_rows(3))
    archive = zipfile.ZipFile(io.BytesIO(export(tmp_path, "kem", KEM_PASSWORD, "--all")))
    assert archive.testzip() is None
    assert archive.infolist()[0].flag_bits & 0x1 == 0  # the container itself is not encrypted
    document = archive.read(archive.namelist()[0]).decode("ascii")
    assert '<EncryptedData Type="http://www.w3.org/2001/04/xmlenc#Element"' in document
    assert 'xmlns="http://www.w3.org/2001/04/xmlenc#"' in document
    assert '<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>' in document
    assert re.search(r"^<CipherValue>[A-Za-z0-9+/=]+</CipherValue>\r?$", document, re.M)
    assert "xenc:" not in document


@pytest.mark.django_db
def test_a_kem_file_is_readable_back_by_the_importer(tmp_path, org_x, org_y):
    rows = factory_rows(4)
    import_rows(tmp_path, org_x, rows)
    data = export(tmp_path, "kem", KEM_PASSWORD, "--all")
    Device.objects.all().delete()
    kem_file = tmp_path / "back.zip"
    kem_file.write_bytes(data)
    (tmp_path / "kem.pw").write_text(KEM_PASSWORD)
    call_command(
        "import_keys",
        str(kem_file),
        "--owner",
        org_y.name,
        "--password-file",
        str(tmp_path / "kem.pw"),
        "--no-progress",
        stdout=io.StringIO(),
    )
    assert sorted(Device.objects.values_list("serial", "owner_id", "device_type")) == [
        (r["serial"], org_y.pk, r["type"]) for r in rows
    ]


@pytest.mark.django_db
def test_a_wrong_password_opens_neither_file(tmp_path, org_x):
    import_rows(tmp_path, org_x, factory_rows(2))
    zip_data = export(tmp_path, "zip", ZIP_PASSWORD, "--all")
    with pytest.raises(RuntimeError, match="[Bb]ad password"):
        read_zip(zip_data, "violet tractor umbrella 43")
    kem_data = export(tmp_path, "kem", KEM_PASSWORD, "--all")
    garbage = kem_plaintext(kem_data, "Kem-Pass_2025!")
    assert not garbage.startswith(b"<MetersInOrder")
    assert b"<Meter>" not in garbage


@pytest.mark.django_db
def test_every_export_is_audited_as_the_cli_with_format_count_and_device_ids(tmp_path, org_x):
    import_rows(tmp_path, org_x, factory_rows(3))
    export(tmp_path, "kem", KEM_PASSWORD, "--serial", "00000001", "00000003")
    event = AuditEvent.objects.get(action="export")
    assert event.actor_label == "cli" and event.actor is None and event.channel == "command"
    assert event.detail == {"format": "kem"}
    assert event.count == 2 and event.object_type == "device"
    assert sorted(event.object_ids) == sorted(
        Device.objects.filter(serial__in=["00000001", "00000003"]).values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_the_web_download_is_audited_with_actor_and_ip(rf, org_x, super_user_x, tmp_path):
    import_rows(tmp_path, org_x, factory_rows(2))
    request = rf.post("/devices/download", REMOTE_ADDR="203.0.113.9")
    request.user = super_user_x
    download = build_download(
        which=Q(owner=org_x),
        fmt="zip",
        password=ZIP_PASSWORD,
        context=AuditContext.from_request(request),
    )
    assert download.filename.endswith(".zip") and download.content_type == "application/zip"
    assert (
        len(read_zip(b"".join(download.chunks), ZIP_PASSWORD)) == 5
    )  # csv, json, 2 meters, readme
    event = AuditEvent.objects.get(action="download")
    assert event.actor == super_user_x and event.ip == "203.0.113.9" and event.channel == "web"
    assert event.detail == {"format": "zip"} and event.count == 2


@pytest.mark.django_db
def test_export_refuses_unknown_serials_and_weak_passwords(tmp_path, org_x):
    import_rows(tmp_path, org_x, factory_rows(1))
    with pytest.raises(CommandError, match="unknown serial"):
        export(tmp_path, "zip", ZIP_PASSWORD, "--serial", "99999999")
    with pytest.raises(CommandError, match="at least 12 characters"):
        export(tmp_path, "zip", "short", "--all")
    assert not AuditEvent.objects.filter(action="export").exists()


# --- file passwords and the download form ------------------------------------------------------


def messages_for(fmt: str, password: str) -> list[str]:
    try:
        validate_file_password(fmt, password)
    except ValidationError as exc:
        return exc.messages
    return []


def test_a_zip_password_must_be_long_and_hard_to_guess_and_says_why():
    problems = messages_for("zip", "password")
    assert len(problems) == 2
    assert "at least 12 characters" in problems[0]
    assert "too easy to guess" in problems[1]
    assert messages_for("zip", "password1234")[0].startswith("The password is too easy")
    assert messages_for("zip", ZIP_PASSWORD) == []


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("", "at least 8 characters"),
        ("Kem-7ch", "at least 8 characters"),
        ("a" * 17, "at most 16 characters"),
        ("æøåæøåæøå", "at most 16 characters"),
        ("football", "common password"),
        ("Baseball1", "common password"),
        ("-startsWithDash", 'not start with "-"'),
        ("blåbær", "printable ASCII"),
    ],
)
def test_a_kem_password_breaking_a_rule_is_refused_with_the_reason(password, fragment):
    messages = messages_for("kem", password)
    assert any(fragment in message for message in messages)
    assert "choose the encrypted ZIP" in messages[-1]


def test_a_sixteen_character_ascii_kem_password_is_accepted():
    assert messages_for("kem", "Sixteen-chars-OK") == []


def test_the_download_form_offers_both_formats_with_zip_first_and_explains_kem():
    form = DownloadForm()
    assert form.fields["format"].choices == FORMATS
    assert form.fields["format"].initial == "zip"
    help_text = form.fields["format"].help_text
    assert "7-Zip" in help_text and "WinZip" in help_text
    assert "password itself as the encryption key" in help_text


def test_the_download_form_lists_every_failing_rule_and_a_mismatch():
    form = DownloadForm(data={"format": "kem", "password": "-" + "x" * 20, "password_repeat": "y"})
    assert not form.is_valid()
    assert len(form.errors["password"]) == 3  # too long, starts with "-", why the ZIP is safer
    assert form.errors["password_repeat"] == ["The two passwords differ."]


def test_the_download_form_rejects_a_password_built_from_the_users_email(super_user_x):
    password = "super.x@distributor-x.example"
    form = DownloadForm(
        data={"format": "zip", "password": password, "password_repeat": password},
        user=super_user_x,
    )
    assert not form.is_valid()
    assert "too easy to guess" in form.errors["password"][0]


@pytest.mark.django_db
def test_order_numbers_that_need_quoting_survive_the_csv_and_json_exactly(tmp_path, org_x):
    rows = factory_rows(3)
    import_rows(tmp_path, org_x, rows)
    tricky = {
        rows[0]["serial"]: 'PO "7", Århus\\2',
        rows[1]["serial"]: "Ørsted-12",
        rows[2]["serial"]: "4711",
    }
    for serial, order in tricky.items():
        Device.objects.filter(serial=serial).update(order_no=order)
    files = read_zip(export(tmp_path, "zip", ZIP_PASSWORD, "--all"), ZIP_PASSWORD)

    table = list(csv.DictReader(io.StringIO(files["keys.csv"].decode())))
    assert {r["serial"]: r["order_no"] for r in table} == tricky
    documents = json.loads(files["keys.json"])
    assert {d["serial"]: d["order_no"] for d in documents} == tricky


@pytest.mark.django_db
def test_a_download_leaves_out_devices_its_user_may_not_download_even_when_the_caller_names_them(
    org_x, org_y, customer, super_user_x
):
    """build_download asks the access module itself: a caller that names foreign devices (a
    forged selection, a new view that forgets the scope) gets a file without their keys."""
    held, foreign_x, foreign_y = (
        DeviceFactory(owner=org_x),
        DeviceFactory(owner=org_x),
        DeviceFactory(owner=org_y),
    )
    keys = {held: b"\x11" * 16, foreign_x: b"\x22" * 16, foreign_y: b"\x33" * 16}
    for device, key in keys.items():
        store_device_keys(device, {"DEK": key})
    ReadRight.objects.create(device=held, grantee=customer, granted_by=super_user_x)

    download = build_download(
        which=Q(pk__in=[d.pk for d in keys]),
        fmt="zip",
        password=ZIP_PASSWORD,
        context=web(customer),
    )
    keys_csv = read_zip(b"".join(download.chunks), ZIP_PASSWORD)["keys.csv"].decode()
    assert keys[held].hex().upper() in keys_csv
    assert keys[foreign_x].hex().upper() not in keys_csv
    assert keys[foreign_y].hex().upper() not in keys_csv
    assert download.count == 1
    assert AuditEvent.objects.get(action="download").object_ids == [held.pk]

    everything = build_download(
        which=Q(), fmt="zip", password=ZIP_PASSWORD, context=web(super_user_x)
    )
    keys_csv = read_zip(b"".join(everything.chunks), ZIP_PASSWORD)["keys.csv"].decode()
    assert keys[foreign_y].hex().upper() not in keys_csv
    assert everything.count == 2


def test_a_password_checked_for_kem_is_judged_again_for_a_zip(org_x, super_user_x):
    """The form's judgement is trusted only for the format it judged: a KEM password (8 to 16
    characters) is far too weak for the ZIP, whose key is derived from it."""
    DeviceFactory(owner=org_x)
    checked_for_kem = validate_file_password("kem", "Mtr-9xQz")  # 8 characters
    with pytest.raises(ValidationError, match="at least 12 characters"):
        build_download(which=Q(), fmt="zip", password=checked_for_kem, context=web(super_user_x))
    assert not AuditEvent.objects.filter(action="download").exists()
    assert "Mtr-9xQz" not in repr(checked_for_kem)


def test_the_download_page_judges_the_file_password_once(client, org_x, super_user_x, monkeypatch):
    """zxcvbn was asked twice per ZIP download (the form, then build_download): ~8 ms of the
    first byte."""
    from kamkeys import password_strength

    judged: list[str] = []
    judge = password_strength.password_strength

    def counted(password, user_inputs=()):  # noqa: ANN001, ANN202
        judged.append("once")
        return judge(password, user_inputs)

    monkeypatch.setattr("keyfiles.passwords.password_strength", counted)
    device = DeviceFactory(owner=org_x)
    store_device_keys(device, {"DEK": bytes(16)})
    login(client, super_user_x)
    store_selection(client, super_user_x, [device.pk])
    response = client.post(
        "/devices/download/",
        {"format": "zip", "password": ZIP_PASSWORD, "password_repeat": ZIP_PASSWORD},
    )
    assert response.status_code == 200
    assert len(read_zip(b"".join(response.streaming_content), ZIP_PASSWORD)) >= 2
    assert judged == ["once"]


@pytest.mark.django_db
def test_an_export_that_fails_midway_leaves_the_previous_file_whole_and_no_part_of_the_new_one(
    tmp_path, monkeypatch
):
    """Attack (an operator re-exporting to yesterday's file name while one stored key is
    damaged, or the disk fills): export_keys truncated the existing file before writing, then
    removed it when a key deep in the stream failed, so yesterday's good file was gone; a
    failure to write (disk full) left a truncated archive at the path. Now the file is written
    beside the target and renamed over it only when whole."""
    from keyvault.models import DeviceKey

    monkeypatch.setattr("keyfiles.downloads.HEAD_DEVICES", 1)
    devices = sorted(DeviceFactory.create_batch(3), key=lambda device: device.pk)
    for device in devices:
        store_device_keys(device, {"DEK": bytes(range(16))})
    DeviceKey.objects.filter(device=devices[2]).update(wrapped=b"\x00" + b"\x01" * 24)
    target = tmp_path / "out-zip.zip"
    target.write_bytes(b"yesterday's export")
    with pytest.raises(CommandError, match="integrity check"):
        export(tmp_path, "zip", "granite lantern orbit 77", "--all")
    assert target.read_bytes() == b"yesterday's export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out-zip.zip", "zip.pw"]

    class FullDisk(io.BytesIO):
        def write(self, data):  # noqa: ANN001, ANN202
            raise OSError(28, "No space left on device")

    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        real_fdopen(fd, *args, **kwargs).close()
        return FullDisk()

    DeviceKey.objects.filter(device=devices[2]).delete()
    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(CommandError, match="cannot write"):
        export(tmp_path, "zip", "granite lantern orbit 77", "--all")
    assert target.read_bytes() == b"yesterday's export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out-zip.zip", "zip.pw"]
