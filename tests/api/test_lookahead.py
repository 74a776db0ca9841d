"""The JSON keys of many serials on PostgreSQL: the later parts are looked up ahead on a second
connection while the first part streams (api.devicesets._LookedUpAhead). Outside a test's
transaction, as a served request is, so the second connection sees the devices."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from audit.models import Action, AuditEvent
from tests.api.conftest import streamed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres")]


def _connections_to_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A first part of two serials, then parts of one and two, then the rest, and a record of
    each look-ahead made."""
    import api.devicesets
    import api.keys
    import api.views

    for module in (api.views, api.keys):
        monkeypatch.setattr(module, "HEAD_DEVICES", 2)
        monkeypatch.setattr(module, "LATER_PARTS", (1, 2))
    made: list[object] = []

    class Recorded(api.devicesets._LookedUpAhead):
        def __init__(self, *args: object) -> None:
            made.append(self)
            super().__init__(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(api.devicesets, "_LookedUpAhead", Recorded)
    return made


def test_serials_looked_up_ahead_stream_in_order_each_part_audited_and_the_connection_closed(
    super_user_x, keyed_x, keyed_y, api_for, small_parts
):
    by_id = sorted(keyed_x, key=lambda d: d.pk)
    sent = [by_id[4].serial, "99999999", by_id[1].serial, keyed_y[0].serial]
    sent += [by_id[0].serial, by_id[3].serial, by_id[2].serial]
    api = api_for(super_user_x, ["keys:read"])
    before = _connections_to_this_database()

    body = json.loads(streamed(api.post("/api/v1/keys/", {"serials": sent})))

    assert len(small_parts) == 1  # the second connection was used
    # [4, unknown], [1], [foreign, 0], [3, 2]: each part in id order.
    parts = [[by_id[4]], [by_id[1]], [by_id[0]], [by_id[2], by_id[3]]]
    assert [d["serial"] for d in body["devices"]] == [d.serial for p in parts for d in p]
    assert body["unknown_serials"] == ["99999999", keyed_y[0].serial]
    events = AuditEvent.objects.filter(action=Action.DOWNLOAD).order_by("pk")
    assert [(e.object_ids, e.detail["part"]) for e in events] == [
        ([d.pk for d in part], number) for number, part in enumerate(parts, start=1)
    ]
    assert _connections_to_this_database() == before


def test_a_token_revoked_mid_stream_stops_the_parts_looked_up_ahead(
    super_user_x, keyed_x, api_for, small_parts
):
    """The later parts were found on the other connection already; found is not sent: their
    keys never leave and they are not audited, and the other connection is closed when the
    document stops, not whenever the stream object is collected."""
    from api import services
    from tests.factories import web

    by_id = sorted(keyed_x, key=lambda d: d.pk)
    api = api_for(super_user_x, ["keys:read"])
    before = _connections_to_this_database()
    response = api.post("/api/v1/keys/", {"serials": [d.serial for d in by_id]})
    assert response.status_code == 200 and len(small_parts) == 1
    assert services.revoke_token(super_user_x.api_tokens.get(), context=web(super_user_x))

    text = streamed(response).decode()

    assert by_id[0].serial in text and by_id[1].serial in text
    assert not any(d.serial in text for d in by_id[2:])
    events = AuditEvent.objects.filter(action=Action.DOWNLOAD)
    assert [e.object_ids for e in events] == [[by_id[0].pk, by_id[1].pk]]
    assert _connections_to_this_database() == before  # the stopped stream closed the other
