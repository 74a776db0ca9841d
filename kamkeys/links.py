"""One source for every link that leaves the site (emails above all).

A link in an email must open on the public host, whatever process builds it (a web request, a
Celery task, a management command), so every email link is built here and nowhere else.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


def public_url(path: str, request: HttpRequest | None = None) -> str:
    """The absolute public URL of ``path`` (which starts with ``/``)."""
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.KAMKEYS_SITE_URL + path


def public_page_url(name: str, *args: object, request: HttpRequest | None = None) -> str:
    """The absolute public URL of a named page, or of the start page if it is not there."""
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        path = reverse("home")
    return public_url(path, request)
