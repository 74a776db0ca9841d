"""Guards for actions that disclose keys or change who may read them."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.decorators import reauthentication_required
from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.selectors import is_super_user


def needs_mfa_setup(user: Any) -> bool:
    """Super Users must have two-factor authentication before touching keys or read rights."""
    return (
        settings.KAMKEYS_SUPERUSER_MFA_REQUIRED and is_super_user(user) and not is_mfa_enabled(user)
    )


def recently_authenticated(request: HttpRequest) -> bool:
    """A log in or reauthentication within ACCOUNT_REAUTHENTICATION_TIMEOUT.

    allauth only counts explicit reauthentications; someone who logged in (password and, for
    MFA users, their code) a minute ago has just proven who they are, so that counts too.
    """
    records = get_authentication_records(request, request.user)
    if not records:
        return False
    latest = max(float(record.get("at", 0)) for record in records)
    return time.time() - latest < account_settings.REAUTHENTICATION_TIMEOUT


def key_action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log-in, MFA for Super Users, and a recent (re)authentication, in that order."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if needs_mfa_setup(request.user):
            messages.warning(
                request,
                "Super Users must turn on two-factor authentication before they can download keys "
                "or change read rights.",
            )
            return redirect("mfa_index")
        if recently_authenticated(request):
            return view(request, *args, **kwargs)
        return reauthentication_required(view)(request, *args, **kwargs)

    return login_required(guarded)
