"""The client's address, the one rule for the audit log, rate limits and logs.

``KAMKEYS_TRUSTED_PROXY_COUNT`` says how many reverse proxies of ours stand in front of the app,
each appending the address it saw to ``X-Forwarded-For``. The client's address is then the entry
that many places from the right: everything left of it was written by the client and proves
nothing (a forged leftmost entry gains nothing). With no trusted proxy (the default) the header is
ignored and the peer address (``REMOTE_ADDR``) is the client. allauth's rate limits read the same
count (``ALLAUTH_TRUSTED_PROXY_COUNT`` in settings), so both agree on who the client is.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _clean(value: str | None) -> str | None:
    """A valid IP address in canonical form, or None."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.9:51234"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def address_from(
    remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int
) -> str | None:
    """The rule itself, for callers without a Django request (gunicorn's access log)."""
    if trusted_proxies > 0 and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",")]
        if len(entries) >= trusted_proxies:
            return _clean(entries[-trusted_proxies])
    return _clean(remote_addr)


def client_address(request: HttpRequest | None) -> str | None:
    """The address of whoever sent ``request``, as far as our own proxies vouch for it."""
    if request is None:
        return None
    return address_from(
        request.META.get("REMOTE_ADDR"),
        request.META.get("HTTP_X_FORWARDED_FOR"),
        getattr(settings, "KAMKEYS_TRUSTED_PROXY_COUNT", 0),
    )
