"""A customer who opens a Super User page is refused at once, not first asked to prove again
who they are for a page they could never use."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name"), [("get", "assign"), ("post", "revoke")])
def test_customer_opening_a_super_user_page_is_refused_at_once(
    client_for, customer, monkeypatch, method, name
):
    client = client_for(customer)
    real_time = time.time
    # An hour later: the login is older than the re-authentication window.
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    response = getattr(client, method)(reverse(f"readrights:{name}"))
    assert response.status_code == 403


@pytest.mark.django_db
def test_super_user_with_an_old_login_is_still_asked_to_reauthenticate(
    client_for, super_user_x, monkeypatch
):
    client = client_for(super_user_x)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    response = client.get(reverse("readrights:assign"))
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]
