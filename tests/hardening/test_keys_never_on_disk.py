"""A large ZIP download keeps keys.json aside while keys.csv streams. Above a few megabytes that
scratch space is a file on the server's disk: it must never hold a plain key."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.keyfiles.test_downloads import ZIP_PASSWORD, export, read_zip
from tests.keyvault.conftest import csv_bytes, factory_rows


@pytest.fixture
def scratch_files_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every spooled scratch buffer goes straight to a file we keep, as a big download's does."""
    kept = tmp_path / "scratch"
    kept.mkdir()

    def on_disk(*args: object, **kwargs: object) -> object:
        return tempfile.NamedTemporaryFile(dir=kept, delete=False, mode="w+b")  # noqa: SIM115

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", on_disk)
    return kept


@pytest.mark.django_db
def test_a_zip_download_leaves_no_plain_key_in_its_scratch_files(
    tmp_path, org_x, settings, scratch_files_on_disk
):
    settings.KAMKEYS_ZIP_METER_FILES_LIMIT = 0
    rows = factory_rows(50)
    source = tmp_path / "factory.csv"
    source.write_bytes(csv_bytes(rows))
    call_command(
        "import_keys", str(source), "--owner", org_x.name, "--no-progress", stdout=io.StringIO()
    )

    files = read_zip(export(tmp_path, "zip", ZIP_PASSWORD, "--owner", org_x.name), ZIP_PASSWORD)

    assert all(r["dek"].upper() in files["keys.json"].decode() for r in rows)
    scratch = b"".join(p.read_bytes() for p in scratch_files_on_disk.iterdir())
    assert scratch, "the download spooled nothing: this test no longer covers keys.json"
    leaked = [r["serial"] for r in rows if r["dek"].upper().encode() in scratch.upper()]
    assert leaked == []


@pytest.mark.django_db
def test_a_factory_file_uploaded_to_the_admin_leaves_no_plain_key_on_disk(
    tmp_path, client_for, staff_user, org_x, settings, monkeypatch
):
    """Attack (a crash, a full disk, or anyone who can read the server's temporary directory):
    a factory file of more than 5 MB uploaded to the admin import page was written by Django
    as it came, plain keys and device codes, into a temporary file for the whole import, and
    left there if the process died. Now every upload that spills to disk is sealed as the
    download's scratch space is (AES-256-CTR under a key held only in memory). Here every
    upload spills, and every temporary file is kept to be searched."""
    from django.core.files import temp as django_temp
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from devices.models import Device

    kept = tmp_path / "temporary"
    kept.mkdir()
    named = tempfile.NamedTemporaryFile

    def on_disk(*args: object, **kwargs: object) -> object:
        return named(dir=kept, delete=False, mode="w+b")

    for target in (tempfile, django_temp):
        monkeypatch.setattr(target, "NamedTemporaryFile", on_disk)
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", on_disk)
    monkeypatch.setattr(tempfile, "TemporaryFile", on_disk)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    rows = factory_rows(50)
    response = client_for(staff_user).post(
        reverse("admin:keyvault_devicekey_import"),
        {
            "file": SimpleUploadedFile("keys.csv", csv_bytes(rows), content_type="text/csv"),
            "format": "csv",
            "owner": org_x.pk,
        },
    )
    assert response.status_code == 200 and "Imported 50 device(s)" in response.content.decode()
    assert Device.objects.filter(owner=org_x).count() == 50
    spilled = b"".join(p.read_bytes() for p in kept.iterdir())
    assert spilled, "the upload spilled nothing: this test no longer covers the upload"
    leaked = [r["serial"] for r in rows if r["dek"].upper().encode() in spilled.upper()]
    assert leaked == []
