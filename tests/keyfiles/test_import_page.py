"""The admin: a read-only audit log, key metadata without bytes, and the factory import page."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from devices.models import Device
from keyvault.models import DeviceKey
from tests.factories import make_staff
from tests.keyvault.conftest import csv_bytes, factory_rows

IMPORT_URL = "admin:keyvault_devicekey_import"


def upload(client, org, data: bytes, *, fmt: str = "csv", password: str = "", name="keys.csv"):  # noqa: ANN001, ANN201
    return client.post(
        reverse(IMPORT_URL),
        {
            "file": SimpleUploadedFile(name, data, content_type="text/csv"),
            "format": fmt,
            "owner": org.pk,
            "password": password,
        },
    )


@pytest.mark.django_db
def test_staff_find_the_import_page_from_the_key_and_audit_lists(client_for, staff_user):
    client = client_for(staff_user)
    for name in ("admin:keyvault_devicekey_changelist", "admin:audit_auditevent_changelist"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert reverse(IMPORT_URL) in response.content.decode()
    page = client.get(reverse(IMPORT_URL))
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content


@pytest.mark.django_db
def test_staff_import_a_good_file_through_the_admin(client_for, staff_user, org_x):
    client = client_for(staff_user)
    response = upload(client, org_x, csv_bytes(factory_rows(3)))
    assert response.status_code == 200
    assert "Imported 3 device(s)" in response.content.decode()
    assert Device.objects.filter(owner=org_x).count() == 3
    event = AuditEvent.objects.get(action="import")
    assert event.actor == staff_user and event.count == 3


@pytest.mark.django_db
def test_a_bad_upload_shows_every_bad_line_with_400_and_writes_nothing(
    client_for, staff_user, org_x
):
    rows = factory_rows(3)
    rows[1]["serial"] = "123"
    rows[2]["device_code"] = "abc"
    response = upload(client_for(staff_user), org_x, csv_bytes(rows))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was imported: 2 problem(s)" in body
    assert "serial must be exactly 8 digits" in body and "device_code must be exactly 2" in body
    assert "<td>3</td>" in body and "<td>4</td>" in body
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_a_kem_upload_without_a_password_is_refused_by_the_form(client_for, staff_user, org_x):
    response = upload(client_for(staff_user), org_x, b"PK..", fmt="kem", name="keys.zip")
    assert response.status_code == 400
    assert "A KEM password is 1 to 16 bytes" in response.content.decode()


@pytest.mark.django_db
def test_non_staff_cannot_reach_the_import_page(client_for, super_user_x, org_x):
    client = client_for(super_user_x)
    response = upload(client, org_x, csv_bytes(factory_rows(1)))
    assert response.status_code in {302, 403}
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_staff_without_the_import_permission_get_403(client_for, org_x):
    plain_staff = make_staff(superuser=False, email="helpdesk@manufacturer.example")
    response = upload(client_for(plain_staff), org_x, csv_bytes(factory_rows(1)))
    assert response.status_code == 403
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_the_key_admin_shows_metadata_but_never_the_wrapped_bytes(client_for, staff_user, org_x):
    client = client_for(staff_user)
    upload(client, org_x, csv_bytes(factory_rows(2)))
    key = DeviceKey.objects.select_related("device").first()
    wrapped = bytes(key.wrapped)
    pages = [
        client.get(reverse("admin:keyvault_devicekey_changelist")),
        client.get(reverse("admin:keyvault_devicekey_change", args=[key.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert key.device.serial in body
        for encoded in (wrapped.hex(), wrapped.hex().upper(), base64.b64encode(wrapped).decode()):
            assert encoded not in body
    assert client.get(reverse("admin:keyvault_devicekey_add")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "kem"])
def test_an_upload_too_big_for_memory_imports_from_its_sealed_file(
    client_for, staff_user, org_x, settings, fmt
):
    """Above FILE_UPLOAD_MAX_MEMORY_SIZE the upload is read back from a sealed temporary file
    (keyfiles.uploads): a CSV from its start, a KEM zip from its end."""
    from tests.keyfiles.test_importer import operator_download, run_import

    rows = factory_rows(4)
    data = csv_bytes(rows)
    if fmt == "kem":
        run_import(org_x, data)
        data = b"".join(operator_download("kem", "Right-password1").chunks)
        Device.objects.all().delete()
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    response = upload(
        client_for(staff_user),
        org_x,
        data,
        fmt=fmt,
        password="Right-password1" if fmt == "kem" else "",
        name=f"keys.{'zip' if fmt == 'kem' else 'csv'}",
    )
    assert response.status_code == 200, response.content.decode()[-2000:]
    assert "Imported 4 device(s)" in response.content.decode()
    assert sorted(Device.objects.values_list("serial", flat=True)) == [r["serial"] for r in rows]


@pytest.mark.django_db
def test_a_file_over_the_pages_limit_is_told_to_use_the_import_command(
    client_for, staff_user, org_x, monkeypatch
):
    """Behind the shipped nginx a larger file used to meet the proxy's bare "413 Request Entity
    Too Large" page; now the proxy lets a little more than the limit through to this message."""
    monkeypatch.setattr("keyfiles.admin.IMPORT_UPLOAD_MAX_MB", 1)
    rows = csv_bytes(factory_rows(1))
    big = rows + b"\n" * (1024 * 1024)  # a little over 1 MB
    response = upload(client_for(staff_user), org_x, big)
    assert response.status_code == 400
    page = response.content.decode()
    assert "the import page takes files of at most 1 MB" in page
    assert "manage.py import_keys" in page
    assert not Device.objects.exists()
