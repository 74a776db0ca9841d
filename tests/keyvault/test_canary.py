"""A canary key imported at the start never shows up in logs, text columns or error pages."""

from __future__ import annotations

import base64
import io
import logging

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import Client
from django.urls import reverse

from devices.models import Device
from keyvault.models import DeviceKey
from tests.factories import login
from tests.keyvault.conftest import add_kek_v2, csv_bytes, factory_rows

CANARY = bytes.fromhex("CA4A12E5C0FFEE5EED0DDBA11FACADE5")


def canary_forms() -> list[str]:
    return [
        CANARY.hex(),
        CANARY.hex().upper(),
        base64.b64encode(CANARY).decode(),
        base64.urlsafe_b64encode(CANARY).decode(),
        repr(CANARY),
    ]


def assert_no_canary(text: str, where: str) -> None:
    for form in canary_forms():
        assert form not in text, f"the canary key appears in {where}"


def text_columns_of_every_table() -> str:
    chunks = []
    for model in apps.get_models():
        fields = [
            field.attname
            for field in model._meta.concrete_fields
            if isinstance(field, models.CharField | models.TextField | models.JSONField)
        ]
        if fields:
            for values in model._base_manager.values_list(*fields):
                chunks.append(repr(values))
    return "\n".join(chunks)


@pytest.mark.django_db
def test_the_canary_key_never_leaks(tmp_path, settings, caplog, org_x, super_user_x, staff_user):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True  # every SQL statement is logged as well
    try:
        _walk_every_path_a_key_takes(tmp_path, settings, org_x, super_user_x, staff_user, caplog)
    finally:
        connection.force_debug_cursor = False
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {getattr(record, 'sql', '')}"
        f" {getattr(record, 'params', '')!r}"
        for record in caplog.records
    )
    logged += "\n" + caplog.text  # formatted, with tracebacks
    assert "keyvault_devicekey" in logged  # the SQL log was really captured
    assert_no_canary(logged, "the log records")
    assert_no_canary(text_columns_of_every_table(), "a text column of the database")


def _walk_every_path_a_key_takes(tmp_path, settings, org_x, super_user_x, staff_user, caplog):  # noqa: ANN001, ANN202, PLR0915
    rows = factory_rows(3)
    rows[0]["dek"] = CANARY.hex()
    source = tmp_path / "factory.csv"
    source.write_bytes(csv_bytes(rows))
    call_command(
        "import_keys",
        str(source),
        "--owner",
        org_x.name,
        "--no-progress",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    canary_device = Device.objects.get(serial=rows[0]["serial"])

    # A rejected file that carries the canary in a bad row, and a conflicting one.
    bad = [dict(rows[0], serial="123"), dict(rows[1], dek=CANARY.hex())]
    source.write_bytes(csv_bytes(bad))
    err = io.StringIO()
    with pytest.raises(CommandError) as rejected:
        call_command(
            "import_keys",
            str(source),
            "--owner",
            org_x.name,
            "--no-progress",
            stdout=io.StringIO(),
            stderr=err,
        )
    assert_no_canary(err.getvalue() + str(rejected.value), "the import report")

    # Exports in both formats, a rotation, and a web download.
    (tmp_path / "pw").write_text("granite lantern orbit 77")
    (tmp_path / "kem.pw").write_text("Kem-Canary-77")
    out = io.StringIO()
    call_command(
        "export_keys",
        "--password-file",
        str(tmp_path / "pw"),
        "--output",
        str(tmp_path / "k.zip"),
        "--all",
        stdout=out,
    )
    call_command(
        "export_keys",
        "--format",
        "kem",
        "--password-file",
        str(tmp_path / "kem.pw"),
        "--output",
        str(tmp_path / "k.kem.zip"),
        "--all",
        stdout=out,
    )
    add_kek_v2(settings)
    call_command("rotate_kek", "--no-progress", stdout=out, stderr=out)
    assert_no_canary(out.getvalue(), "command output")

    browser = login(Client(raise_request_exception=False), super_user_x)
    browser.post(reverse("devices:selection"), {"action": "select", "device": canary_device.pk})
    form = {
        "format": "zip",
        "password": "granite lantern orbit 77",
        "password_repeat": "granite lantern orbit 77",
    }
    response = browser.post(reverse("keyfiles:download"), form)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)  # encrypted: the canary cannot appear in clear

    # A tampered key: the download fails with an error page, the export with a message.
    DeviceKey.objects.filter(device=canary_device, name="DEK").update(
        wrapped=b"\x00" + b"\x5a" * 24
    )
    response = browser.post(reverse("keyfiles:download"), form)
    assert response.status_code >= 400
    assert_no_canary(response.content.decode(errors="replace"), "an error page")
    with pytest.raises(CommandError) as failed:
        call_command(
            "export_keys",
            "--password-file",
            str(tmp_path / "pw"),
            "--output",
            str(tmp_path / "k2.zip"),
            "--all",
            stdout=out,
        )
    assert_no_canary(str(failed.value), "the export error")

    # The admin pages staff read.
    admin = login(Client(raise_request_exception=False), staff_user)
    key = DeviceKey.objects.get(device=canary_device, name="DEK")
    for url in (
        reverse("admin:keyvault_devicekey_changelist"),
        reverse("admin:keyvault_devicekey_change", args=[key.pk]),
        reverse("admin:audit_auditevent_changelist"),
        reverse("admin:devices_device_changelist") if _registered("devices", "device") else None,
    ):
        if url:
            page = admin.get(url)
            assert page.status_code == 200
            assert_no_canary(page.content.decode(), url)


def _registered(app_label: str, model_name: str) -> bool:
    from django.contrib import admin

    model = apps.get_model(app_label, model_name)
    return admin.site.is_registered(model)
