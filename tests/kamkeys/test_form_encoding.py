"""A form body in a charset other than UTF-8: bad input, a 400, also on the embedded default."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/register/", "/devices/selection/"])
def test_a_form_sent_in_utf16_is_a_400_not_a_server_error(settings, debug, path):
    """Django refuses such a body; with DEBUG (the embedded default) its error page read the
    body again and the answer was a 500."""
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    response = client.post(
        path,
        "login=someone@example.com&password=x",
        content_type="application/x-www-form-urlencoded; charset=utf-16",
    )
    assert response.status_code == 400
    assert b"Bad request" in response.content


def test_a_form_in_utf8_named_either_way_is_read_as_usual(client):
    for charset in ("utf-8", "UTF-8"):
        response = client.post(
            "/accounts/login/",
            "login=someone@example.com&password=x",
            content_type=f"application/x-www-form-urlencoded; charset={charset}",
        )
        assert response.status_code == 200  # the login page again, with its error
