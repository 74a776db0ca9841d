"""The key canary: a known key, a known file password and a known user password go through every
flow (import, web downloads, the export command, invitations and acceptance, log in, error
paths, the admin), then every place they could end up is searched for them: 0 hits.

Places: log records (caplog and a StreamHandler on the root logger, SQL statements included),
every text, char, JSON and binary column of every model, the decoded sessions, sent emails
(subjects, bodies, alternatives), every response body, every requested URL and redirect target,
and the output of the management commands.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import pyzipper
from django.apps import apps
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.models import Organization
from devices.models import Device
from keyfiles.kem import iter_kem_document
from keyvault.models import DeviceKey
from tests.factories import OrganizationFactory, UserFactory, login, make_super_user
from tests.hardening.figures import add_figure

CANARY = bytes.fromhex("C0FFEE15CA4A12E5DEADBEEF0BADF00D")
CANARY_KEM = bytes.fromhex("0DDBA11C0FFEE15CA4A12E5FACADE5AB")  # imported from a KEM file
FILE_PASSWORD = "Ultramarine-Canary-Zip-7731"
KEM_PASSWORD = "KemCanary-7731"
USER_PASSWORD = "Heliotrope-Canary-Login-55!"
NEEDLES = {
    "canary key (hex)": CANARY.hex(),
    "canary key (HEX)": CANARY.hex().upper(),
    "KEM canary key (hex)": CANARY_KEM.hex(),
    "KEM canary key (HEX)": CANARY_KEM.hex().upper(),
    "file password": FILE_PASSWORD,
    "KEM password": KEM_PASSWORD,
    "user password": USER_PASSWORD,
}
LINK = re.compile(r"https?://[^\s\"<>]+?(/read-rights/invitation/[^/\s\"<>]+/)")


@dataclass
class Places:
    """Every text the secrets could leak into, named so a hit says where."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: Any) -> None:
        if isinstance(text, bytes | memoryview):
            text = bytes(text).decode("latin-1")
        self.texts.append((where, str(text)))

    def hits(self) -> list[str]:
        found = []
        for where, text in self.texts:
            lowered = text.lower()
            for label, needle in NEEDLES.items():
                if needle in text or (label.endswith("(hex)") and needle in lowered):
                    found.append(f"{label} in {where}")
        return found


class RecordingClient(Client):
    """A test client that keeps every URL it requested, every redirect target and body."""

    def __init__(self, places: Places, **kwargs: Any) -> None:
        super().__init__(raise_request_exception=False, **kwargs)
        self.places = places

    def request(self, **request: Any) -> Any:
        response = super().request(**request)
        url = f"{request.get('PATH_INFO', '')}?{request.get('QUERY_STRING', '')}"
        self.places.add(f"request URL {url}", url)
        if response.get("Location"):
            self.places.add(f"redirect from {url}", response["Location"])
        if getattr(response, "streaming", False):
            content = b"".join(response.streaming_content)
            response.streaming_content = iter([content])
        else:
            content = response.content
        self.places.add(f"response body of {url} ({response.status_code})", content)
        return response


@pytest.fixture
def places() -> Places:
    return Places()


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _row(serial: str, dek: str) -> dict[str, str]:
    return {
        "serial": serial,
        "device_code": "42",
        "type": "MULTICAL 21",
        "dek": dek,
        "order_no": "5100001",
        "type_no": "021A1B2C3",
        "config_no": "3C001",
        "consumption_type": "Water",
    }


def _kem_file() -> bytes:
    meter = (
        "<Meter><MeterName>MC21</MeterName><ConsumptionType>Water</ConsumptionType>"
        "<MeterNo>88000003</MeterNo><SerialNo>88000003</SerialNo><VendorId>KAM</VendorId>"
        f"<ConfigNo>3C001</ConfigNo><TypeNo>021A1B2C3</TypeNo><DEK>{CANARY_KEM.hex().upper()}"
        "</DEK></Meter>"
    )
    return b"".join(iter_kem_document([meter], KEM_PASSWORD))


def _command(places: Places, *args: str, fails: bool = False) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        assert fails, f"{args[0]} failed: {exc}"
        places.add(f"error of {args[0]}", str(exc))
    else:
        assert not fails, f"{args[0]} should have failed"
    places.add(f"stdout of {' '.join(args[:1])}", out.getvalue())
    places.add(f"stderr of {' '.join(args[:1])}", err.getvalue())


def _every_column(places: Places) -> None:
    kinds = (models.CharField, models.TextField, models.JSONField, models.BinaryField)
    for model in apps.get_models():
        columns = [f.attname for f in model._meta.concrete_fields if isinstance(f, kinds)]
        if not columns:
            continue
        for row in model._base_manager.values_list("pk", *columns):
            for column, value in zip(columns, row[1:], strict=True):
                if value not in (None, "", b""):
                    places.add(f"{model._meta.db_table}.{column} of row {row[0]}", value)
    from kamkeys.sessions import SessionStore

    for session in Session.objects.all():
        decoded = SessionStore().decode(session.session_data)  # encrypted: Django's store can't
        assert decoded, "a session row did not decode: this check would search nothing"
        places.add(f"decoded session {session.pk[:6]}…", repr(decoded))


def _emails(places: Places) -> None:
    for number, message in enumerate(mail.outbox):
        places.add(f"email {number} subject", message.subject)
        places.add(f"email {number} body", message.body)
        for content, _mimetype in getattr(message, "alternatives", []):
            places.add(f"email {number} alternative", content)


def _admin_pages(client: Client) -> None:
    """The changelist and up to three change pages of every model in the admin."""
    for model in admin.site._registry:
        meta = model._meta
        try:
            client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        except NoReverseMatch:
            continue
        for pk in model._base_manager.order_by("-pk").values_list("pk", flat=True)[:3]:
            client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk]))


def _select(client: Client, devices: list[Device]) -> None:
    client.post(
        reverse("devices:selection"), {"action": "select", "device": [d.pk for d in devices]}
    )


@pytest.mark.django_db
def test_no_key_or_password_leaks_anywhere(  # noqa: PLR0915
    tmp_path,
    caplog,
    root_stream,
    places,
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True  # every SQL statement and its parameters is logged
    mail.outbox.clear()
    try:
        _drive_every_flow(tmp_path, places, django_capture_on_commit_callbacks)
    finally:
        connection.force_debug_cursor = False

    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        text += f" {getattr(record, 'sql', '')} {getattr(record, 'params', '')!r}"
        places.add(f"log record {record.name}:{record.lineno}", text)
    places.add("caplog text", caplog.text)
    places.add("root StreamHandler", root_stream.getvalue())
    assert "keyvault_devicekey" in caplog.text, "the SQL log was captured"
    _every_column(places)
    _emails(places)

    planted = Places([("a planted record", f"x{CANARY.hex().upper()}y {USER_PASSWORD}")])
    assert len(planted.hits()) == 3, "the search finds what is there"
    hits = places.hits()
    add_figure("canary", len(places.texts), len(hits))
    assert not hits, "\n".join(hits)


def _drive_every_flow(tmp_path, places: Places, on_commit) -> None:  # noqa: ANN001, PLR0915
    org = OrganizationFactory(name="Canary Distributor", kind=Organization.Kind.DISTRIBUTOR)
    super_user = make_super_user(org, email="canary.super@distributor.example", name="Cara")
    staff = UserFactory(email="canary.staff@manufacturer.example", is_staff=True, is_superuser=True)

    # Import through the real command: a CSV and a KEM file; then a bad file carrying the canary.
    (tmp_path / "keys.csv").write_bytes(
        _csv([_row("88000001", CANARY.hex()), _row("88000002", "11" * 16)])
    )
    _command(
        places, "import_keys", str(tmp_path / "keys.csv"), "--owner", org.name, "--no-progress"
    )
    (tmp_path / "keys.kem").write_bytes(_kem_file())
    (tmp_path / "kem.pw").write_text(KEM_PASSWORD + "\n")
    _command(
        places,
        "import_keys",
        str(tmp_path / "keys.kem"),
        "--owner",
        org.name,
        "--password-file",
        str(tmp_path / "kem.pw"),
        "--no-progress",
    )
    assert Device.objects.filter(serial__in=["88000001", "88000003"]).count() == 2
    bad = [
        _row("88000001", "22" * 16),
        _row("123", CANARY.hex()),
        _row("88000004", CANARY.hex()[:-2]),
    ]
    (tmp_path / "bad.csv").write_bytes(_csv(bad))
    _command(
        places,
        "import_keys",
        str(tmp_path / "bad.csv"),
        "--owner",
        org.name,
        "--no-progress",
        fails=True,
    )
    (tmp_path / "wrong.pw").write_text("Wrong-" + KEM_PASSWORD[:8])
    _command(
        places,
        "import_keys",
        str(tmp_path / "keys.kem"),
        "--owner",
        org.name,
        "--password-file",
        str(tmp_path / "wrong.pw"),
        "--no-progress",
        fails=True,
    )

    # The export command, both formats.
    (tmp_path / "zip.pw").write_text(FILE_PASSWORD)
    for fmt, pw in (("zip", "zip.pw"), ("kem", "kem.pw")):
        _command(
            places,
            "export_keys",
            "--format",
            fmt,
            "--password-file",
            str(tmp_path / pw),
            "--output",
            str(tmp_path / f"out.{fmt}.zip"),
            "--all",
        )
        places.add(f"exported {fmt} file", (tmp_path / f"out.{fmt}.zip").read_bytes())
    with pyzipper.AESZipFile(tmp_path / "out.zip.zip") as archive:
        archive.setpassword(FILE_PASSWORD.encode())
        exported = archive.read("keys.csv").decode().lower()
    assert CANARY.hex() in exported and CANARY_KEM.hex() in exported, "the canaries were imported"

    devices = list(Device.objects.filter(owner=org))
    distributor = login(RecordingClient(places), super_user)
    distributor.get(reverse("devices:list"))
    _select(distributor, devices)
    distributor.get(reverse("keyfiles:download"))
    for fmt, pw in (("zip", FILE_PASSWORD), ("kem", KEM_PASSWORD)):
        response = distributor.post(
            reverse("keyfiles:download"), {"format": fmt, "password": pw, "password_repeat": pw}
        )
        assert response.status_code == 200, fmt
    # Error paths: passwords that differ, a KEM password too long, a weak ZIP password.
    for data in (
        {"format": "zip", "password": FILE_PASSWORD, "password_repeat": FILE_PASSWORD + "x"},
        {"format": "kem", "password": FILE_PASSWORD, "password_repeat": FILE_PASSWORD},
        {"format": "kem", "password": "-" + KEM_PASSWORD, "password_repeat": "-" + KEM_PASSWORD},
        {"format": "zip", "password": "Canary7", "password_repeat": "Canary7"},
    ):
        response = distributor.post(reverse("keyfiles:download"), data)
        assert response.status_code == 400, data

    # Invitation of an unknown customer, who accepts with a password and downloads.
    with on_commit(execute=True):
        distributor.get(reverse("readrights:edit"))
        distributor.get(reverse("readrights:assign"))
        response = distributor.post(
            reverse("readrights:assign"),
            {
                "emails": "carla.kunde@utility.example",
                "action": "confirm",
                "device_count": str(len(devices)),
            },
        )
        assert response.status_code == 302, response.content[:500]
    distributor.get(reverse("readrights:assign_done"))
    distributor.get(reverse("readrights:user_admin"))
    invitation_mail = mail.outbox[-1]
    link = LINK.search(invitation_mail.body).group(1)
    customer = RecordingClient(places)
    customer.get(link, follow=True)
    with on_commit(execute=True):
        response = customer.post(
            reverse("readrights:accept"),
            {"name": "Carla Kunde", "password1": USER_PASSWORD + "x", "password2": USER_PASSWORD},
        )
        assert response.status_code == 400
        response = customer.post(
            reverse("readrights:accept"),
            {"name": "Carla Kunde", "password1": USER_PASSWORD, "password2": USER_PASSWORD},
        )
        assert response.status_code == 302, re.findall(
            r"(?s)<ul class=\"errorlist.*?</ul>", response.content.decode()
        )
    customer.get(reverse("devices:list"))
    _select(customer, devices)
    response = customer.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": FILE_PASSWORD, "password_repeat": FILE_PASSWORD},
    )
    assert response.status_code == 200
    customer.post(reverse("account_logout"))

    # Log in with the password through allauth's form, and a wrong one on another account.
    visitor = RecordingClient(places)
    visitor.get(reverse("account_login"))
    response = visitor.post(
        reverse("account_login"),
        {"login": "carla.kunde@utility.example", "password": USER_PASSWORD},
    )
    assert response.status_code == 302
    stranger = RecordingClient(places)
    stranger.post(reverse("account_login"), {"login": super_user.email, "password": USER_PASSWORD})
    # A password typed into the registration form that fails the policy.
    stranger.post(reverse("accounts:password_check"), {"password": USER_PASSWORD})

    # Revocation, and a tampered key: the download fails with an error page, never the key.
    with on_commit(execute=True):
        customer_id = Device.objects.get(serial="88000001").read_rights.first().grantee_id
        distributor.post(
            reverse("readrights:revoke"), {"grantee": str(customer_id), "scope": "all"}
        )
    DeviceKey.objects.filter(device__serial="88000002").update(wrapped=b"\x00" + b"\x5a" * 24)
    response = distributor.post(
        reverse("keyfiles:download"),
        {"format": "zip", "password": FILE_PASSWORD, "password_repeat": FILE_PASSWORD},
    )

    # The admin pages staff read.
    _admin_pages(login(RecordingClient(places), staff))
