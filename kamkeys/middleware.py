"""Sessions of Super Users, who can disclose thousands of keys, and of staff, who can make anyone
a Super User or move devices between organizations, expire sooner when idle."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.selectors import remember_roles
from kamkeys.views import bad_request


class SuperUserIdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and (remember_roles(user) or user.is_staff):
            # Sliding: every request restarts the idle clock (SESSION_SAVE_EVERY_REQUEST).
            request.session.set_expiry(settings.KAMKEYS_SUPERUSER_IDLE_SECONDS)
        return self.get_response(request)


FORM = "application/x-www-form-urlencoded"


class FormEncodingMiddleware:
    """A form body in another charset than UTF-8 (``charset=utf-16``) is bad input, answered
    with the 400 page before anything reads ``request.POST``. Django refuses such a body with
    BadRequest; with DEBUG its error page reads the body again, raises again, and the answer
    was a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        encoding = request.encoding
        if request.content_type == FORM and encoding and encoding.lower() != "utf-8":
            return bad_request(request)
        return self.get_response(request)
