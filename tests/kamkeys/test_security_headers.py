"""Every page carries a strict CSP and framing protection; Super Users' sessions idle out sooner."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


def test_pages_cannot_be_framed_or_sniffed(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_super_user_session_expires_after_a_short_idle_time(client_for, super_user_x, settings):
    client = client_for(super_user_x)
    client.get("/accounts/request-access/")
    assert client.session.get_expiry_age() == settings.KAMKEYS_SUPERUSER_IDLE_SECONDS
    assert settings.KAMKEYS_SUPERUSER_IDLE_SECONDS < settings.SESSION_COOKIE_AGE


def test_customer_session_keeps_the_ordinary_idle_time(client_for, customer, settings):
    client = client_for(customer)
    client.get("/accounts/request-access/")
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_staff_session_expires_after_the_same_short_idle_time(client_for, staff_user, settings):
    """Staff grant Super User access and move devices between organizations: their session is
    as dangerous to leave open as a Super User's."""
    client = client_for(staff_user)
    client.get("/admin/")
    assert client.session.get_expiry_age() == settings.KAMKEYS_SUPERUSER_IDLE_SECONDS
