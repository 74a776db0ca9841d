"""Base views: the landing redirect, the health check and the error pages."""

from __future__ import annotations

import sys

from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from kamkeys.health import health
from kamkeys.outage import is_outage, unavailable_response


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and bookmarks ask for /favicon.ico whatever the page links to."""
    return redirect(static("favicon.svg"), permanent=True)


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("account_login")
    return redirect("devices:list")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Normally answered by kamkeys.health.HealthzMiddleware before this view is reached."""
    body, status = health()
    return JsonResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # SessionInterrupted: another request of the session (the first of a double click on a form
    # that logs in, or a logout in another tab) ended it while this one ran. Not bad input.
    interrupted = isinstance(exception, SessionInterrupted)
    return render(request, "errors/400.html", {"interrupted": interrupted}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Called while Django handles the exception: an unreachable database or Redis is a 503."""
    if is_outage(sys.exc_info()[1]):
        return unavailable_response()
    return render(request, "errors/500.html", status=500)
