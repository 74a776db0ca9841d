"""The admin site: allauth's login, and a second factor before any page.

Staff decide who is a Super User and which organization owns a device, so a staff account can
hand out every key. Its login is allauth's (rate limits, lockout, TOTP), and a staff account
without two-factor authentication is sent to set it up before any admin page opens: the same
rule (``accounts.access.needs_mfa_setup``) that keeps Super Users from keys without it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.access import needs_mfa_setup

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


def _holds_nul(request: HttpRequest) -> bool:
    return any(
        "\x00" in name or any("\x00" in value for value in values)
        for name, values in request.GET.lists()
    )


class KamkeysAdminSite(admin.AdminSite):
    site_header = "kamkeys administration"
    site_title = "kamkeys administration"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Staff log in through allauth (rate limits, lockout, MFA); others are told no."""
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if request.user.is_authenticated:
            if request.user.is_active and request.user.is_staff:
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
            return render(request, "errors/403.html", status=403)
        return redirect_to_login(next_url, login_url=reverse("account_login"))

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Every admin page: staff permission (Django's check), then a second factor."""

        @wraps(view)
        def second_factor_first(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            if _holds_nul(request):
                # PostgreSQL refuses text holding NUL, and the admin hands list filter values to
                # the database as they come: a 500 otherwise.
                return HttpResponseBadRequest(
                    "The address holds a NUL character (%00), which no search or filter can "
                    "match. Remove it and try again.",
                    content_type="text/plain; charset=utf-8",
                )
            logout = reverse("admin:logout", current_app=self.name)
            if request.path != logout and needs_mfa_setup(request.user):
                messages.warning(
                    request,
                    "Staff must turn on two-factor authentication before they can use the "
                    "administration.",
                )
                return redirect("mfa_index")
            return view(request, *args, **kwargs)

        # Typed like Django's own admin_view (django-stubs): the wrapper stands in for the view.
        return cast(_View, super().admin_view(second_factor_first, cacheable))
