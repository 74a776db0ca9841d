"""One source for every link that leaves the site (emails above all).

A link in an email must open on the public host, whatever process builds it (a web request, a
Celery task, a management command), so every email link is built here and nowhere else.

The rule: when ``KAMKEYS_SITE_URL`` is set (always in production) it is the origin of every link,
never the request's Host header, which the client chooses (a spoofed Host would otherwise put
an attacker's server in a password-reset link). Without it (the embedded default) a link follows
the request's host when there is a request, else ``http://localhost:8000``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

EMBEDDED_ORIGIN = "http://localhost:8000"


def site_origin(request: HttpRequest | None = None, *, fallback: str = "") -> str:
    """``scheme://host[:port]`` of the public site, without a trailing slash. ``fallback``: the
    origin a request came to earlier (``audit.context.AuditContext.origin``), for services that
    build links without the request."""
    configured = getattr(settings, "KAMKEYS_SITE_URL", "")
    if configured:
        return configured
    if request is not None:
        return f"{request.scheme}://{request.get_host()}"
    return fallback or EMBEDDED_ORIGIN


def public_url(path: str, request: HttpRequest | None = None, *, origin: str = "") -> str:
    """The absolute public URL of ``path`` (which starts with ``/``)."""
    if not path.startswith("/"):
        path = "/" + path
    return site_origin(request, fallback=origin) + path


def public_page_url(
    name: str, *args: object, request: HttpRequest | None = None, origin: str = ""
) -> str:
    """The absolute public URL of a named page."""
    return public_url(reverse(name, args=args), request, origin=origin)


def rebase(url: str, request: HttpRequest | None = None) -> str:
    """The same path, query and fragment on the public origin: for links a library built
    from the request (allauth's ``build_absolute_uri``)."""
    parts = urlsplit(url)
    return public_url(urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)), request)
