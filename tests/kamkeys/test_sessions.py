"""Sessions (kamkeys.sessions): an unchanged session is rewritten at most once a minute, any
change at once, and the idle timeout never runs late."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from kamkeys.sessions import TOUCH_SECONDS

pytestmark = pytest.mark.django_db
URL = "/devices/"


def _row(client) -> Session:  # noqa: ANN001
    return Session.objects.get(session_key=client.session.session_key)


def _age_row(client, seconds: int) -> None:  # noqa: ANN001
    """As if the last write was ``seconds`` ago."""
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=_row(client).expire_date - timedelta(seconds=seconds)
    )


def test_idle_pages_rewrite_the_session_once_a_minute(client_for, super_user_x, settings):
    client = client_for(super_user_x)
    client.get(URL)
    first = _row(client)
    client.get(URL)
    assert _row(client).session_data == first.session_data
    assert _row(client).expire_date == first.expire_date  # a second later: not written

    _age_row(client, TOUCH_SECONDS + 1)
    before = timezone.now()
    client.get(URL)
    moved = _row(client).expire_date
    idle = timedelta(seconds=settings.KAMKEYS_SUPERUSER_IDLE_SECONDS)
    assert before + idle <= moved <= timezone.now() + idle


def test_the_session_ends_on_time_however_it_was_touched(client_for, super_user_x, settings):
    client = client_for(super_user_x)
    client.get(URL)
    idle = timedelta(seconds=settings.KAMKEYS_SUPERUSER_IDLE_SECONDS)
    assert _row(client).expire_date <= timezone.now() + idle  # never later than the rule
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_changed_session_is_written_at_once(client_for, customer):
    client = client_for(customer)
    client.get(URL)
    # The first selection change stores the session's selection key in it.
    client.post("/devices/selection/", {"action": "clear"})
    from kamkeys.sessions import SessionStore

    row = Session.objects.get(session_key=client.session.session_key)
    assert "devices_selection_key" in SessionStore().decode(row.session_data)


def test_a_change_made_in_place_is_written_too(client_for, customer):
    from kamkeys.sessions import SessionStore

    client = client_for(customer)
    client.get(URL)
    session = SessionStore(client.session.session_key)
    session["account_authentication_methods"].append({"method": "test", "at": 0})
    session.save()  # "modified" is False: only the content tells
    stored = SessionStore(client.session.session_key)
    assert {"method": "test", "at": 0} in stored["account_authentication_methods"]


def _as_a_database_thief_reads_it(session_data: str) -> str:
    """What the sessions table shows someone holding a copy of the database but not the
    environment: Django's signed session data is only signed, so its payload is base64 (and
    zlib) that anyone decodes; the signature needs SECRET_KEY to forge, not to read."""
    import base64
    import zlib

    payload = session_data.split(":", 1)[0]
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    try:
        return (zlib.decompress(raw) if compressed else raw).decode("utf-8", "replace")
    except zlib.error:
        return raw.decode("utf-8", "replace")


def test_a_database_thief_reads_no_link_token_in_the_sessions_table(
    client, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    """Attack (a stolen backup or a read-only copy of the database, without SECRET_KEY): an
    invitee opened the invitation link but has not finished the form (or walked away). The
    link's token waits in the session, and the sessions table held it readable, although the
    invitations table keeps only a hash of it: with it the thief accepted the invitation,
    chose the password and downloaded the devices' keys, for the link's 14 days (expired
    session rows stay in the table until clearsessions runs). Now the session data is
    encrypted under a key derived from SECRET_KEY, so the table shows nothing to read."""
    from django.core import mail

    from devices.models import Device
    from readrights import services
    from tests.factories import web
    from tests.readrights.conftest import invitation_token

    with django_capture_on_commit_callbacks(execute=True):
        services.assign_read_rights(
            devices_qs=Device.objects.filter(pk=devices_x[0].pk),
            emails_in=["new.customer@utility.example"],
            context=web(super_user_x),
        )
    token = invitation_token(mail.outbox[-1])
    assert client.get(f"/read-rights/invitation/{token}/").status_code == 302
    assert client.get("/read-rights/invitation/accept/").status_code == 200  # still pending
    rows = list(Session.objects.values_list("session_data", flat=True))
    assert rows
    readable = " ".join(_as_a_database_thief_reads_it(data) for data in rows)
    assert token not in readable and token.split(".")[-1] not in readable
    # The session still works for its owner: the form is there, and accepting succeeds.
    accepted = client.post(
        "/read-rights/invitation/accept/",
        {"name": "", "password1": "Meter-Keys-2026-Blue!", "password2": "Meter-Keys-2026-Blue!"},
    )
    assert accepted.status_code == 302


def test_a_session_written_before_its_data_was_encrypted_still_reads(customer):
    from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore

    from kamkeys.sessions import SessionStore

    old = DjangoSessionStore()
    old["kept"] = "as it was"
    old.save()
    assert SessionStore(old.session_key)["kept"] == "as it was"
