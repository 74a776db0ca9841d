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
    stored = Session.objects.get(session_key=client.session.session_key).get_decoded()
    assert "devices_selection_key" in stored


def test_a_change_made_in_place_is_written_too(client_for, customer):
    from kamkeys.sessions import SessionStore

    client = client_for(customer)
    client.get(URL)
    session = SessionStore(client.session.session_key)
    session["account_authentication_methods"].append({"method": "test", "at": 0})
    session.save()  # "modified" is False: only the content tells
    stored = SessionStore(client.session.session_key)
    assert {"method": "test", "at": 0} in stored["account_authentication_methods"]
