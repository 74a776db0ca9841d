"""Factory import: all or nothing, a row report with line numbers, idempotent re-import."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import pyzipper
from django.core.management import CommandError, call_command
from django.db.models import Q

from audit.context import AuditContext
from audit.models import AuditEvent
from devices.access import OPERATOR
from devices.device_codes import check_device_code
from devices.models import Device
from keyfiles.downloads import Download, build_download
from keyfiles.importer import ImportReport, import_keys
from keyvault.models import DeviceKey
from keyvault.services import plain_keys_of, store_device_keys
from tests.factories import DeviceFactory
from tests.keyvault.conftest import csv_bytes, factory_rows


def operator_download(fmt: str, password: str) -> Download:
    """Every device as ``manage.py export_keys --all`` writes it."""
    return build_download(
        which=Q(), fmt=fmt, password=password, context=AuditContext.command(), operator=OPERATOR
    )


def run_import(org, data: bytes, fmt: str = "csv", password: str | None = None) -> ImportReport:  # noqa: ANN001
    return import_keys(
        io.BytesIO(data), owner=org, fmt=fmt, password=password, context=AuditContext.command()
    )


def nothing_written() -> bool:
    return not Device.objects.exists() and not DeviceKey.objects.exists()


@pytest.mark.django_db
def test_a_good_file_stores_devices_for_the_owner_with_wrapped_keys_and_hashed_codes(org_x):
    rows = factory_rows(3, gpk=True)
    report = run_import(org_x, csv_bytes(rows))
    assert report.ok and report.imported == 3 and report.keys == 6
    device = Device.objects.get(serial=rows[0]["serial"])
    assert device.owner == org_x and device.device_type == "MULTICAL 21"
    assert device.order_no == rows[0]["order_no"] and device.type_no == "021A1B2C3"
    assert check_device_code(device.serial, rows[0]["device_code"], device.device_code_hash)
    assert rows[0]["device_code"] not in device.device_code_hash
    assert plain_keys_of(device) == {
        "DEK": bytes.fromhex(rows[0]["dek"]),
        "GPK1": bytes.fromhex(rows[0]["gpk1"]),
    }
    event = AuditEvent.objects.get(action="import")
    assert event.count == 3 and event.actor_label == "cli"


@pytest.mark.django_db
def test_importing_the_same_file_again_skips_what_is_already_stored(org_x):
    data = csv_bytes(factory_rows(4))
    run_import(org_x, data)
    before = list(DeviceKey.objects.order_by("pk").values_list("pk", "wrapped"))
    report = run_import(org_x, data)
    assert report.ok and report.imported == 0 and report.skipped == 4
    assert list(DeviceKey.objects.order_by("pk").values_list("pk", "wrapped")) == before


@pytest.mark.django_db
def test_a_file_mixing_stored_and_new_serials_imports_only_the_new_ones(org_x):
    rows = factory_rows(5)
    run_import(org_x, csv_bytes(rows[:2]))
    report = run_import(org_x, csv_bytes(rows))
    assert (report.imported, report.skipped) == (3, 2)
    assert Device.objects.count() == 5


def bad_files() -> list[tuple[str, bytes, list[str]]]:
    good = factory_rows(3)
    header = list(good[0])

    def with_row(index: int, **changes: str) -> bytes:
        rows = [dict(row) for row in good]
        rows[index].update(changes)
        return csv_bytes(rows, header)

    return [
        (
            "wrong header",
            csv_bytes(good, header).replace(b"dek", b"key", 1),
            ["line 1: wrong header"],
        ),
        (
            "short serial",
            with_row(1, serial="1234567"),
            ["line 3: serial must be exactly 8 digits"],
        ),
        ("non-hex key", with_row(0, dek="Z" * 32), ["line 2: dek must be 32 hexadecimal digits"]),
        (
            "duplicate serial in file",
            with_row(2, serial=good[0]["serial"]),
            [f"line 4: serial {good[0]['serial']} appears more than once in the file"],
        ),
        ("empty file", b"", ["the file is empty"]),
        (
            "header only",
            csv_bytes(good, header).split(b"\n")[0] + b"\n",
            ["the file holds no rows"],
        ),
        ("binary junk", os.urandom(4096) + b"\xff\xfe\x00", ["line 1: the file is not CSV text"]),
        (
            "several bad rows",
            with_row(0, device_code="7", type="").replace(good[2]["dek"].encode(), b"00"),
            [
                "line 2: device_code must be exactly 2 digits; type is empty",
                "line 4: dek must be 32 hexadecimal digits",
            ],
        ),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "data", "expected"), bad_files(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_input_gets_a_row_report_and_nothing_is_written(org_x, case, data, expected):
    report = run_import(org_x, data)
    assert not report.ok
    listed = [str(problem) for problem in report.problems]
    for fragment in expected:
        assert any(line.startswith(fragment) for line in listed), (case, listed)
    assert nothing_written()
    assert not AuditEvent.objects.filter(action="import").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("separator", "shown"), [(b";", "“;”"), (b"\t", "tabs")])
def test_a_file_separated_by_semicolons_or_tabs_is_told_so(org_x, separator, shown):
    """Attack (or a Danish Excel's "CSV"): the columns separated by ; or TAB. The report said
    "missing column(s): serial, device_code, type, dek; unknown column(s): 1 unreadable",
    naming neither the cause nor the cure. Now it says how the columns are separated and how
    to save the file; nothing is imported."""
    data = csv_bytes(factory_rows(2)).replace(b",", separator)
    report = run_import(org_x, data)
    assert [str(p) for p in report.problems] == [
        f"line 1: wrong header: the columns are separated by {shown}, not commas. Save the file "
        "as comma-separated CSV (in Excel: “CSV UTF-8 (Comma delimited)”) and import it again."
    ]
    assert nothing_written()


@pytest.mark.django_db
def test_a_header_with_a_nameless_column_says_so(org_x):
    """A comma at the end of every line (an empty last column) was "1 unreadable"."""
    data = csv_bytes(factory_rows(2)).replace(b"\n", b",\n")
    report = run_import(org_x, data)
    assert len(report.problems) == 1
    assert "unknown column(s): 1 without a name (a comma at the end of the header row?)" in str(
        report.problems[0]
    )
    assert nothing_written()


@pytest.mark.django_db
def test_a_serial_stored_with_different_keys_is_an_error_and_nothing_is_written(org_x):
    existing = DeviceFactory(serial="00000002", owner=org_x)
    store_device_keys(existing, {"DEK": b"\x01" * 16})
    report = run_import(org_x, csv_bytes(factory_rows(3)))
    assert [str(p) for p in report.problems] == [
        "line 3: serial 00000002 is already stored with different keys"
    ]
    assert list(Device.objects.values_list("serial", flat=True)) == ["00000002"]
    assert DeviceKey.objects.count() == 1


@pytest.mark.django_db
def test_a_serial_another_organization_holds_with_the_same_keys_is_an_error_not_a_skip(
    org_x, org_y
):
    """Attack: a file for X repeating devices Y already holds (same keys). The report said
    "Imported 1 device(s) … for X; skipped 2 already stored with the same keys", so staff
    believed X had them; they stayed Y's, and X's Super Users never saw them. Now the rows are
    reported, naming no organization, and nothing is imported."""
    rows = factory_rows(3)
    run_import(org_y, csv_bytes(rows[:2]))
    report = run_import(org_x, csv_bytes(rows))
    assert not report.ok and report.imported == 0
    assert [str(p) for p in report.problems] == [
        f"line {line}: serial {row['serial']} is stored for another organization; an import "
        "does not move devices (transfer it in the admin if it changed hands)"
        for line, row in ((2, rows[0]), (3, rows[1]))
    ]
    assert report.summary().startswith("Nothing was imported: 2 problem(s) in 3 row(s)")
    assert set(Device.objects.values_list("owner__name", flat=True)) == {org_y.name}
    assert Device.objects.count() == 2


@pytest.mark.django_db
def test_a_kem_password_sixteen_bytes_too_long_is_reported_and_nothing_is_written(org_x, tmp_path):
    run_import(org_x, csv_bytes(factory_rows(2)))
    download = operator_download("kem", "Sixteen-chars-OK")
    kem = b"".join(download.chunks)
    Device.objects.all().delete()
    report = run_import(org_x, kem, "kem", "Sixteen-chars-OK" * 2)
    assert not report.ok
    assert "a KEM password is 1 to 16 bytes (this one is 32)" in str(report.problems[0])
    assert nothing_written()


@pytest.mark.django_db
def test_a_kem_file_with_the_wrong_password_is_reported_and_nothing_is_written(org_x):
    run_import(org_x, csv_bytes(factory_rows(2)))
    download = operator_download("kem", "Right-password1")
    kem = b"".join(download.chunks)
    Device.objects.all().delete()
    report = run_import(org_x, kem, "kem", "Wrong-password1")
    assert "password is wrong" in str(report.problems[0])
    assert nothing_written()


def _rezipped(kem_zip: bytes, compression: int, **kwargs: object) -> bytes:
    """The .kem member of a KEM export in a zip of another kind."""
    with zipfile.ZipFile(io.BytesIO(kem_zip)) as archive:
        member = archive.infolist()[0]
        data = archive.read(member)
    out = io.BytesIO()
    opener = pyzipper.AESZipFile if kwargs else zipfile.ZipFile
    with opener(out, "w", compression=compression, **kwargs) as archive:
        if kwargs:
            archive.setpassword(b"zip-password")
        archive.writestr(member.filename, data)
    return out.getvalue()


def _flip_inside(data: bytes, marker: bytes) -> bytes:
    """One byte changed 20 bytes after ``marker`` (in a member's data)."""
    damaged = bytearray(data)
    damaged[data.index(marker) + len(marker) + 20] ^= 0x55
    return bytes(damaged)


def _damaged_kem(kind: str, kem_zip: bytes) -> bytes:
    if kind == "encrypted zip member":
        return _rezipped(kem_zip, zipfile.ZIP_DEFLATED, encryption=pyzipper.WZ_AES)
    if kind == "damaged deflate data":
        deflated = _rezipped(kem_zip, zipfile.ZIP_DEFLATED)
        name = zipfile.ZipFile(io.BytesIO(deflated)).infolist()[0].filename.encode()
        return _flip_inside(deflated, name)
    if kind == "wrong CRC":
        return _flip_inside(_rezipped(kem_zip, zipfile.ZIP_STORED), b"<CipherValue>")
    assert kind == "cipher text not whole blocks"
    return b"<CipherValue>AAAA</CipherValue>"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind",
    [
        "encrypted zip member",
        "damaged deflate data",
        "wrong CRC",
        "cipher text not whole blocks",
    ],
)
def test_a_damaged_kem_upload_is_reported_as_damaged_and_nothing_is_written(org_x, kind):
    run_import(org_x, csv_bytes(factory_rows(2)))
    kem_zip = b"".join(operator_download("kem", "Right-password1").chunks)
    Device.objects.all().delete()
    report = run_import(org_x, _damaged_kem(kind, kem_zip), "kem", "Right-password1")
    assert not report.ok
    assert "damaged" in str(report.problems[0]) or "encrypted" in str(report.problems[0])
    assert nothing_written()


# --- the command ---------------------------------------------------------------------------------


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "factory.csv"
    path.write_bytes(data)
    return str(path)


@pytest.mark.django_db
def test_the_command_takes_the_owner_by_customer_number_or_name(tmp_path, org_x):
    out = io.StringIO()
    call_command(
        "import_keys",
        write(tmp_path, csv_bytes(factory_rows(2))),
        "--owner",
        org_x.customer_number,
        "--no-progress",
        stdout=out,
    )
    assert "Imported 2 device(s)" in out.getvalue()
    call_command(
        "import_keys",
        write(tmp_path, csv_bytes(factory_rows(2, start=10))),
        "--owner",
        org_x.name.upper(),
        "--no-progress",
        stdout=out,
    )
    assert Device.objects.filter(owner=org_x).count() == 4


@pytest.mark.django_db
def test_the_command_lists_every_bad_row_and_fails(tmp_path, org_x):
    rows = factory_rows(3)
    rows[0]["serial"] = "12"
    rows[2]["dek"] = "xyz"
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported: 2 problem"):
        call_command(
            "import_keys",
            write(tmp_path, csv_bytes(rows)),
            "--owner",
            org_x.name,
            "--no-progress",
            stderr=err,
        )
    assert "line 2: serial must be exactly 8 digits" in err.getvalue()
    assert "line 4: dek must be 32 hexadecimal digits" in err.getvalue()
    assert nothing_written()


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_owner_and_a_kem_file_without_password(tmp_path, org_x):
    path = write(tmp_path, csv_bytes(factory_rows(1)))
    with pytest.raises(CommandError, match="no organization"):
        call_command("import_keys", path, "--owner", "Nobody Ltd", "--no-progress")
    with pytest.raises(CommandError, match="--password-file"):
        call_command("import_keys", path, "--owner", org_x.name, "--format", "kem")
    assert nothing_written()


@pytest.mark.django_db
def test_a_header_less_file_never_echoes_key_material_in_the_report(org_x):
    rows = factory_rows(2)
    data = b"\n".join(csv_bytes(rows).split(b"\n")[1:])  # the first data row becomes the header
    report = run_import(org_x, data)
    text = " ".join(str(problem) for problem in report.problems)
    assert "wrong header" in text
    assert rows[0]["dek"].lower() not in text.lower()
    assert nothing_written()


@pytest.mark.django_db
def test_a_reimport_meeting_a_tampered_stored_key_imports_nothing_and_audits_the_failure(org_x):
    rows = factory_rows(3)
    run_import(org_x, csv_bytes(rows[:1]))
    DeviceKey.objects.update(wrapped=b"\x00" + b"\x01" * 24)
    report = run_import(org_x, csv_bytes(rows))
    assert not report.ok and "fail to unwrap" in str(report.problems[0])
    assert Device.objects.count() == 1
    failure = AuditEvent.objects.get(action="unwrap_failed", actor_label="system", count=1)
    assert failure.object_ids == [Device.objects.get().pk]
