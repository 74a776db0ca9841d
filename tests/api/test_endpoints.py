"""The /api/v1/ endpoints as a head-end uses them: lists, keys, read rights, the audit."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import pyzipper
from django.utils import timezone
from drf_spectacular.validation import validate_schema

from audit.models import Action, AuditEvent
from devices.models import Device
from kamkeys.models import OutboundEmail
from readrights.models import Invitation, ReadRight
from tests.api.conftest import ApiClient, key_of, streamed
from tests.factories import DeviceFactory, UserFactory, login

pytestmark = pytest.mark.django_db
ZIP_PASSWORD = "granite lantern orbit 77"


def _problem(response, status):  # noqa: ANN001, ANN202
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_a_super_user_lists_their_own_devices_and_not_another_distributors(
    super_user_x, keyed_x, keyed_y, api_for
):
    response = api_for(super_user_x, ["devices:read"]).get("/api/v1/devices/")
    assert response.status_code == 200
    serials = [row["serial"] for row in response.json()["results"]]
    assert serials == [d.serial for d in keyed_x]


def test_list_rows_are_the_device_serializers_own_output(super_user_x, keyed_x, api_for):
    """The list writes its rows without the serializer; they must be what it would write
    (the documented schema): every member, types, the owner's name, times in ISO 8601."""
    from api.serializers import DeviceSerializer

    Device.objects.filter(pk=keyed_x[1].pk).update(production_year=2024, order_no='A "q" ø')
    # A time on the second (no microseconds to write) and one with a single microsecond.
    Device.objects.filter(pk=keyed_x[2].pk).update(
        created_at=datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    )
    Device.objects.filter(pk=keyed_x[3].pk).update(
        created_at=datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC)
    )
    response = api_for(super_user_x, ["devices:read"]).get("/api/v1/devices/")
    devices = Device.objects.filter(pk__in=[d.pk for d in keyed_x]).order_by("pk")
    expected = json.loads(json.dumps(DeviceSerializer(devices, many=True).data))
    assert response.json()["results"] == expected
    assert expected[1]["production_year"] == 2024 and expected[1]["owner"]
    assert [row["created_at"] for row in expected[2:4]] == [
        "2026-03-01T12:00:05Z",
        "1999-12-31T23:59:59.000001Z",
    ]


def test_list_times_follow_the_time_zone_as_the_serializer_does(
    super_user_x, keyed_x, api_for, settings
):
    from api.serializers import DeviceSerializer

    settings.TIME_ZONE = "Europe/Copenhagen"
    response = api_for(super_user_x, ["devices:read"]).get("/api/v1/devices/")
    devices = Device.objects.filter(pk__in=[d.pk for d in keyed_x]).order_by("pk")
    expected = json.loads(json.dumps(DeviceSerializer(devices, many=True).data))
    assert response.json()["results"] == expected
    assert expected[0]["created_at"].endswith(("+01:00", "+02:00"))


def test_the_list_takes_my_devices_searches(super_user_x, keyed_x, api_for):
    api = api_for(super_user_x, ["devices:read"])
    response = api.get("/api/v1/devices/", {"serial": keyed_x[2].serial})
    assert [row["serial"] for row in response.json()["results"]] == [keyed_x[2].serial]
    assert api.get("/api/v1/devices/", {"type": "flowiq"}).json()["results"] == []


def test_cursor_pages_list_every_device_once_while_devices_are_added(
    super_user_x, keyed_x, org_x, api_for
):
    from tests.factories import DeviceFactory

    api = api_for(super_user_x, ["devices:read"])
    first = api.get("/api/v1/devices/", {"page_size": 2}).json()
    added = DeviceFactory(owner=org_x)
    seen = [row["serial"] for row in first["results"]]
    next_url = first["next"]
    while next_url:
        page = api.get(next_url).json()
        seen += [row["serial"] for row in page["results"]]
        next_url = page["next"]
    assert seen == [d.serial for d in keyed_x] + [added.serial]


def test_a_damaged_cursor_or_page_size_is_a_400_problem(super_user_x, keyed_x, api_for):
    api = api_for(super_user_x, ["devices:read"])
    _problem(api.get("/api/v1/devices/", {"cursor": "not-a-cursor"}), 400)
    _problem(api.get("/api/v1/devices/", {"page_size": "0"}), 400)
    _problem(api.get("/api/v1/devices/", {"page_size": "many"}), 400)


@pytest.mark.parametrize("path", ["/api/v1/devices/", "/api/v1/audit/disclosures/"])
@pytest.mark.parametrize("position", ["abc", "1.5", "", "NaN", "1e400", "\x00", "-1"])
def test_a_well_encoded_cursor_with_a_forged_position_is_a_400_problem(
    super_user_x, keyed_x, api_for, path, position
):
    """A cursor is base64 of a query string anyone can write: its position must be an id."""
    import base64

    cursor = base64.b64encode(f"p={position}".encode()).decode()
    api = api_for(super_user_x, ["devices:read"])
    body = _problem(api.get(path, {"cursor": cursor}), 400)
    assert "cursor" in body["detail"]


def test_changed_since_lists_transferred_devices_and_new_read_rights(
    super_user_x, customer, keyed_x, org_y, api_for
):
    since = timezone.now()
    device = Device.objects.get(pk=keyed_x[1].pk)
    device.device_type = "MULTICAL 403"
    device.save()
    ReadRight.objects.create(device=keyed_x[3], grantee=customer, granted_by=super_user_x)
    mine = api_for(super_user_x, ["devices:read"]).get(
        "/api/v1/devices/", {"changed_since": since.isoformat()}
    )
    assert [row["serial"] for row in mine.json()["results"]] == [keyed_x[1].serial]
    theirs = api_for(customer, ["devices:read"]).get(
        "/api/v1/devices/", {"changed_since": since.isoformat()}
    )
    assert [row["serial"] for row in theirs.json()["results"]] == [keyed_x[3].serial]


def test_a_foreign_device_is_a_404_that_reveals_nothing(super_user_x, keyed_y, api_for):
    api = api_for(super_user_x, ["devices:read"])
    foreign = _problem(api.get(f"/api/v1/devices/{keyed_y[0].serial}/"), 404)
    missing = _problem(api.get("/api/v1/devices/99999999/"), 404)
    assert foreign["detail"] == missing["detail"]
    _problem(api.get("/api/v1/devices/12ab/"), 400)


def test_keys_as_json_report_unknown_and_malformed_serials_by_name(
    super_user_x, keyed_x, keyed_y, api_for
):
    api = api_for(super_user_x, ["keys:read"])
    body = json.loads(
        streamed(
            api.post(
                "/api/v1/keys/",
                {"serials": [keyed_x[0].serial, keyed_y[0].serial, "99999999", "12-34"]},
            )
        )
    )
    assert body["count"] == 1
    device = keyed_x[0]
    assert body["devices"] == [
        {
            "serial": device.serial,
            "manufacturer": "KAM",
            "kind": "meter",
            "type": "MULTICAL 21",
            "type_no": device.type_no,
            "config_no": device.config_no,
            "consumption_type": "Water",
            "production_year": None,
            "order_no": device.order_no,
            "keys": {"DEK": key_of(0).hex().upper()},
        }
    ]
    assert body["unknown_serials"] == [keyed_y[0].serial, "99999999"]
    assert body["invalid_serials"] == ["12-34"]


def test_a_device_with_several_keys_lists_each_dek_first(super_user_x, org_x, api_for):
    from keyvault.services import store_device_keys

    device = DeviceFactory(owner=org_x)
    store_device_keys(device, {"GPK2": key_of(3), "DEK": key_of(1), "GPK1": key_of(2)})
    body = json.loads(
        streamed(
            api_for(super_user_x, ["keys:read"]).post("/api/v1/keys/", {"serials": [device.serial]})
        )
    )
    keys = body["devices"][0]["keys"]
    assert list(keys) == ["DEK", "GPK1", "GPK2"]
    assert keys == {name: key_of(n).hex().upper() for n, name in enumerate(keys, start=1)}


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/keys/", {}),
        ("/api/v1/keys/", {"format": "zip", "password": ZIP_PASSWORD}),
        ("/api/v1/read-rights/assign/", {"emails": ["ops@utility.example"]}),
        ("/api/v1/read-rights/revoke/", {"emails": ["ops@utility.example"]}),
    ],
)
def test_a_serial_with_a_lone_surrogate_escape_is_a_400_problem_not_a_broken_document(
    super_user_x, keyed_x, api_for, path, extra
):
    """JSON may escape half a character ("\\ud800"): no text can hold it, so it was echoed into
    the document's invalid_serials after the keys had gone, and the stream broke off."""
    api = api_for(super_user_x)
    body = json.dumps({"serials": [keyed_x[0].serial], **extra})
    body = body.replace('"]', '", "1234\\ud800"]', 1)
    response = api.client.post(path, body, content_type="application/json", headers=api.headers)
    problem = _problem(response, 400)
    assert "serials" in problem["errors"]
    assert not AuditEvent.objects.filter(action=Action.DOWNLOAD).exists()
    assert not ReadRight.objects.exists() and not Invitation.objects.exists()


def test_a_serial_two_manufacturers_share_does_not_hide_an_unknown_one(
    super_user_x, keyed_x, api_for
):
    """Two devices matched for one serial and none for another is still one unknown serial."""
    twin = DeviceFactory(owner=keyed_x[0].owner, serial=keyed_x[0].serial, manufacturer="ZZZ")
    api = api_for(super_user_x, ["keys:read"])
    body = json.loads(
        streamed(api.post("/api/v1/keys/", {"serials": [keyed_x[0].serial, "99999999"]}))
    )
    assert sorted(d["manufacturer"] for d in body["devices"]) == ["KAM", "ZZZ"]
    assert body["count"] == 2 and twin.serial == keyed_x[0].serial
    assert body["unknown_serials"] == ["99999999"]


def test_only_eight_ascii_digits_are_a_serial(super_user_x, keyed_x, api_for):
    """Strings of eight characters that are not eight ASCII digits (other scripts' digits, a
    line break between two serials) are malformed, reported by name; repeats count once."""
    api = api_for(super_user_x, ["keys:read"])
    odd = ["\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "1234\n567", "1234567\u00b2"]
    serial = keyed_x[0].serial
    body = json.loads(
        streamed(
            api.post("/api/v1/keys/", {"serials": [serial, *odd, f" {serial} ", "1234\n5678"]})
        )
    )
    assert [d["serial"] for d in body["devices"]] == [serial]
    assert body["invalid_serials"] == [*odd, "1234\n5678"]
    assert body["unknown_serials"] == []


def test_many_serials_stream_in_two_parts_each_audited_before_its_keys(
    super_user_x, keyed_x, keyed_y, api_for, monkeypatch
):
    """Past the first HEAD_DEVICES serials the rest are looked up while the document streams:
    every device once, the rest's disclosure audited as a second event, the unknown serials of
    both parts at the end in the order sent."""
    import api.keys
    import api.views

    monkeypatch.setattr(api.views, "HEAD_DEVICES", 2)
    monkeypatch.setattr(api.keys, "HEAD_DEVICES", 2)
    api = api_for(super_user_x, ["keys:read"])
    by_id = sorted(keyed_x, key=lambda d: d.pk)
    sent = [by_id[3].serial, "99999999", by_id[1].serial, by_id[4].serial]
    sent += [keyed_y[0].serial, by_id[0].serial, by_id[2].serial, "1234"]
    body = json.loads(streamed(api.post("/api/v1/keys/", {"serials": sent})))
    # The first two well-formed serials are one device and an unknown one; each part in id order.
    first, rest = [by_id[3]], [by_id[0], by_id[1], by_id[2], by_id[4]]
    assert [d["serial"] for d in body["devices"]] == [d.serial for d in first + rest]
    assert body["count"] == 5
    assert body["unknown_serials"] == ["99999999", keyed_y[0].serial]
    assert body["invalid_serials"] == ["1234"]
    events = AuditEvent.objects.filter(action=Action.DOWNLOAD).order_by("pk")
    assert [(e.object_ids, e.count, e.detail["part"]) for e in events] == [
        ([d.pk for d in first], 1, 1),
        ([d.pk for d in rest], 4, 2),
    ]


def test_a_token_revoked_while_its_keys_stream_sends_no_key_of_the_parts_still_to_come(
    super_user_x, keyed_x, api_for, monkeypatch
):
    """Attack: a leaked token asks for many serials; its owner revokes it while the document
    streams. The parts looked up after the revocation were still looked up, audited and sent
    (100,000 serials take a while). Now the document stops before the next part: its keys
    never leave, it is not audited, and the JSON is left unclosed so no client takes it for
    a complete answer."""
    import api.keys
    import api.views
    from api import services
    from tests.factories import web

    monkeypatch.setattr(api.views, "HEAD_DEVICES", 2)
    monkeypatch.setattr(api.keys, "HEAD_DEVICES", 2)
    client = api_for(super_user_x, ["keys:read"])
    by_id = sorted(keyed_x, key=lambda d: d.pk)
    response = client.post("/api/v1/keys/", {"serials": [d.serial for d in by_id]})
    assert response.status_code == 200
    token = super_user_x.api_tokens.get()
    assert services.revoke_token(token, context=web(super_user_x))
    text = streamed(response).decode()
    assert by_id[0].serial in text and by_id[1].serial in text
    assert not any(d.serial in text for d in by_id[2:])
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    events = AuditEvent.objects.filter(action=Action.DOWNLOAD)
    assert [e.object_ids for e in events] == [[by_id[0].pk, by_id[1].pk]]


def test_every_api_disclosure_is_audited_with_the_token_and_channel(super_user_x, keyed_x, api_for):
    api = api_for(super_user_x, ["keys:read"])
    streamed(api.post("/api/v1/keys/", {"search": {"type": "multical"}}))
    event = AuditEvent.objects.get(action=Action.DOWNLOAD)
    token = super_user_x.api_tokens.get()
    assert event.channel == "api"
    assert event.detail == {
        "token_id": token.pk,
        "token_name": "head-end",
        "format": "json",
    }
    assert sorted(event.object_ids) == sorted(d.pk for d in keyed_x)


def _unzip(content: bytes, password: str) -> dict[str, bytes]:
    with pyzipper.AESZipFile(io.BytesIO(content)) as archive:
        archive.setpassword(password.encode())
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_zip_holds_the_same_files_as_the_web_download(client, super_user_x, keyed_x, api_for):
    from tests.factories import store_selection

    api = api_for(super_user_x, ["keys:read"])
    response = api.post(
        "/api/v1/keys/",
        {"serials": [d.serial for d in keyed_x], "format": "zip", "password": ZIP_PASSWORD},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    from_api = _unzip(streamed(response), ZIP_PASSWORD)
    login(client, super_user_x)
    store_selection(client, super_user_x, [d.pk for d in keyed_x])
    web = client.post(
        "/devices/download/",
        {"format": "zip", "password": ZIP_PASSWORD, "password_repeat": ZIP_PASSWORD},
    )
    from_web = _unzip(streamed(web), ZIP_PASSWORD)
    assert set(from_api) == set(from_web)
    assert any(name.startswith("wmbusmeters/") for name in from_api)
    for name in from_api:
        if name != "README.txt":  # it says when it was made
            assert from_api[name] == from_web[name]
    event = AuditEvent.objects.filter(action=Action.DOWNLOAD).order_by("pk").first()
    assert event.channel == "api" and event.detail["format"] == "zip"


def test_a_file_is_refused_for_unknown_serials_and_a_weak_password(
    super_user_x, keyed_x, keyed_y, api_for
):
    api = api_for(super_user_x, ["keys:read"])
    body = _problem(
        api.post(
            "/api/v1/keys/",
            {
                "serials": [keyed_x[0].serial, keyed_y[0].serial],
                "format": "zip",
                "password": ZIP_PASSWORD,
            },
        ),
        400,
    )
    assert body["unknown_serials"] == [keyed_y[0].serial]
    body = _problem(
        api.post(
            "/api/v1/keys/",
            {"serials": [keyed_x[0].serial], "format": "zip", "password": "password"},
        ),
        400,
    )
    assert "password" in body["errors"]
    assert not AuditEvent.objects.filter(action=Action.DOWNLOAD).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"serials": "63012345"},
        {"serials": [1, 2]},
        {"serials": []},
        {"serials": ["63012345"], "search": {"type": "x"}},
        {"serials": ["0" * 8] * 100_001},
        {"search": {"changed_since": "yesterday"}},
        {"serials": ["63012345"], "format": "pdf"},
        {"serials": ["63012345"], "format": "kem"},
    ],
)
def test_bad_key_requests_are_a_400_problem_never_a_500(super_user_x, api_for, body):
    _problem(api_for(super_user_x, ["keys:read"]).post("/api/v1/keys/", body), 400)


def test_a_body_that_is_not_json_is_a_400_problem(super_user_x, make_token):
    from django.test import Client

    response = Client().post(
        "/api/v1/keys/",
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {make_token(super_user_x)}"},
    )
    _problem(response, 400)


@pytest.mark.parametrize("path", ["/api/v1/keys/", "/api/v1/read-rights/assign/"])
def test_a_body_over_the_size_limit_is_a_413_problem_not_an_html_page(
    super_user_x, api_for, settings, path
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    api = api_for(super_user_x)
    body = _problem(api.post(path, {"serials": ["63012345"] * 200}), 413)
    assert "1,000 bytes" in body["detail"]


def test_read_rights_are_assigned_and_revoked_with_the_pages_emails(
    super_user_x, customer, keyed_x, api_for
):
    api = api_for(super_user_x, ["readrights:write"])
    serials = [d.serial for d in keyed_x[:2]]
    response = api.post(
        "/api/v1/read-rights/assign/",
        {"serials": serials, "emails": [customer.email, "new.person@utility.example"]},
    )
    assert response.status_code == 200, response.content
    assert response.json()["granted"] == {customer.email: 2}
    assert response.json()["invited"] == {"new.person@utility.example": 2}
    assert ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).count() == 2
    assert Invitation.objects.filter(email="new.person@utility.example").exists()
    assert set(OutboundEmail.objects.values_list("to", "template")) >= {
        (customer.email, "readrights_granted"),
        ("new.person@utility.example", "readrights_invitation"),
    }
    response = api.post(
        "/api/v1/read-rights/revoke/", {"serials": serials[:1], "emails": [customer.email]}
    )
    assert response.json()["revoked"] == {customer.email: 1}
    assert ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).count() == 1


def test_repeating_an_assignment_mails_neither_a_customer_nor_an_invitee_again(
    super_user_x, customer, keyed_x, api_for
):
    """A sync that sends the same assignment every night: the answers say so, and nobody is
    emailed a second time (an invitee's link from the first email keeps working)."""
    api = api_for(super_user_x, ["readrights:write"])
    body = {"serials": [keyed_x[0].serial], "emails": [customer.email, "new@utility.example"]}
    api.post("/api/v1/read-rights/assign/", body)
    again = api.post("/api/v1/read-rights/assign/", body).json()
    assert again["granted"] == {customer.email: 0} and again["already"] == {customer.email: 1}
    assert again["invited"] == {} and again["already_invited"] == {"new@utility.example": 1}
    mailed = OutboundEmail.objects.exclude(template__startswith="api_token")
    assert sorted(mailed.values_list("to", flat=True)) == [customer.email, "new@utility.example"]


def test_revoking_an_invited_address_takes_the_devices_out_of_its_invitation(
    super_user_x, keyed_x, api_for, django_capture_on_commit_callbacks, mailoutbox
):
    """Revoke by email before the invitee has accepted: accepting later grants only what is
    left, not what the API was told to revoke."""
    from readrights.services import accept_invitation
    from tests.factories import web
    from tests.readrights.conftest import invitation_token

    api = api_for(super_user_x, ["readrights:write"])
    serials = [d.serial for d in keyed_x[:2]]
    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            "/api/v1/read-rights/assign/",
            {"serials": serials, "emails": ["new.person@utility.example"]},
        )
    [invitation_email] = [m for m in mailoutbox if "new.person@utility.example" in m.to]
    token = invitation_token(invitation_email)
    response = api.post(
        "/api/v1/read-rights/revoke/",
        {"serials": serials[:1], "emails": ["new.person@utility.example"]},
    )
    assert response.status_code == 200, response.content
    assert response.json()["revoked"] == {"new.person@utility.example": 1}
    acceptance = accept_invitation(
        token=token, name="New Person", password="Correct horse 42 battery!", context=web()
    )
    granted = ReadRight.objects.filter(grantee=acceptance.user, revoked_at__isnull=True)
    assert list(granted.values_list("device__serial", flat=True)) == serials[1:]


def test_read_rights_on_a_foreign_device_change_nothing(
    super_user_x, customer, keyed_x, keyed_y, api_for
):
    api = api_for(super_user_x, ["readrights:write"])
    body = _problem(
        api.post(
            "/api/v1/read-rights/assign/",
            {"serials": [keyed_x[0].serial, keyed_y[0].serial], "emails": [customer.email]},
        ),
        400,
    )
    assert body["unknown_serials"] == [keyed_y[0].serial]
    assert not ReadRight.objects.exists()


def test_a_customer_token_may_not_change_read_rights(customer, keyed_x, api_for):
    api = api_for(customer, ["readrights:write"])
    _problem(
        api.post(
            "/api/v1/read-rights/assign/",
            {"serials": [keyed_x[0].serial], "emails": ["a@b.example"]},
        ),
        403,
    )


def test_the_disclosure_audit_shows_only_the_organizations_own_devices(
    super_user_x, super_user_y, customer, keyed_x, keyed_y, api_for
):
    for device in (keyed_x[0], keyed_y[0]):
        ReadRight.objects.create(device=device, grantee=customer, granted_by=super_user_x)
    streamed(
        api_for(customer, ["keys:read"]).post(
            "/api/v1/keys/", {"serials": [keyed_x[0].serial, keyed_y[0].serial]}
        )
    )
    rows = api_for(super_user_x, ["devices:read"]).get("/api/v1/audit/disclosures/").json()
    assert [(r["actor"], r["channel"], r["serials"]) for r in rows["results"]] == [
        (customer.email, "api", [keyed_x[0].serial])
    ]
    _problem(api_for(customer, ["devices:read"]).get("/api/v1/audit/disclosures/"), 403)


def test_a_missing_scope_is_a_403_and_a_bad_token_a_401(super_user_x, keyed_x, api_for):
    from tests.api.conftest import ApiClient

    api = api_for(super_user_x, ["devices:read"])
    _problem(api.post("/api/v1/keys/", {"serials": [keyed_x[0].serial]}), 403)
    unauthenticated = _problem(ApiClient(None).get("/api/v1/devices/"), 401)
    assert "Bearer" in unauthenticated["detail"]
    response = ApiClient("kk_live_" + "a" * 16 + "_" + "b" * 40).get("/api/v1/devices/")
    _problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_super_user_who_turned_off_mfa_cannot_use_a_keys_token(super_user_x, keyed_x, api_for):
    from allauth.mfa.models import Authenticator

    api = api_for(super_user_x, ["keys:read", "devices:read"])
    Authenticator.objects.filter(user=super_user_x).delete()
    _problem(api.post("/api/v1/keys/", {"serials": [keyed_x[0].serial]}), 403)
    assert api.get("/api/v1/devices/").status_code == 200


def test_too_many_requests_is_a_429_with_retry_after(super_user_x, keyed_x, api_for, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_token": "3/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        api = api_for(super_user_x, ["devices:read"])
        statuses = [api.get("/api/v1/devices/").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = api.get("/api/v1/devices/")
        _problem(response, 429)
        assert int(response["Retry-After"]) > 0
        other = api_for(UserFactory(), ["devices:read"])
        assert other.get("/api/v1/devices/").status_code == 200
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert api_settings is not None


def test_unknown_api_paths_are_problems_too(api_for, super_user_x):
    _problem(api_for(super_user_x).get("/api/v2/devices/"), 404)


def test_the_openapi_schema_is_valid_and_names_every_endpoint(client):
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert {
        "/api/v1/devices/",
        "/api/v1/keys/",
        "/api/v1/read-rights/assign/",
        "/api/v1/read-rights/revoke/",
        "/api/v1/audit/disclosures/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"


def test_the_documentation_page_loads_its_scripts_from_our_own_origin(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content


def test_an_expired_token_is_refused_at_once(super_user_x, make_token):
    from api.models import ApiToken
    from tests.api.conftest import ApiClient

    api = ApiClient(make_token(super_user_x, ["devices:read"]))
    assert api.get("/api/v1/devices/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in _problem(api.get("/api/v1/devices/"), 401)["detail"]


def test_the_json_api_answers_in_english_whatever_the_browser_asks(customer, make_token):
    api = ApiClient(make_token(customer, ["devices:read"]))
    refused = api.client.get(
        "/api/v1/devices/",
        {"changed_since": "not a date"},
        headers={**api.headers, "Accept-Language": "da"},
    )
    assert refused.status_code == 400 and refused["Content-Language"] == "en"
    assert "Some of the request's values are missing or wrong" in refused.json()["detail"]
    assert "Datetime has wrong format" in str(refused.json()["errors"])


def test_an_unexpected_error_is_a_problem_500_that_reveals_nothing_and_is_logged(
    super_user_x, keyed_x, api_for, monkeypatch, caplog
):
    from api import access

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals of the failure")

    monkeypatch.setattr(access, "visible_for_search", broken)
    response = api_for(super_user_x).get("/api/v1/devices/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Server error"
    assert b"secret internals" not in response.content
    assert any("Internal Server Error: /api/v1/devices/" in r.getMessage() for r in caplog.records)


def test_a_database_outage_under_the_api_is_a_problem_503_with_retry_after(
    super_user_x, keyed_x, api_for, monkeypatch
):
    from django.db import OperationalError

    from api import access

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(access, "visible_for_search", down)
    response = api_for(super_user_x).get("/api/v1/devices/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
