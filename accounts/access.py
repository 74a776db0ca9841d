"""Guards for actions that disclose keys or change who may read them.

Two kinds of people hold the keys' custody: Super Users, who download keys and give read rights,
and staff, who decide who is a Super User and which organization owns a device. Both need a
second factor (``needs_mfa_setup``), and both need a recent (re)authentication for those actions.
Which custody change a staff member may make at all is decided in one place,
``custody_refusal``, which every admin route and the services that write the change call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from allauth.account import app_settings as account_settings
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.decorators import reauthentication_required
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext, gettext_lazy

from accounts.models import Membership
from accounts.selectors import is_super_user

ANOTHER_STAFF_MEMBER = gettext_lazy("another staff member must do this")
SUPER_USERS_ONLY = gettext_lazy("Only Super Users of the owning organization manage read rights.")


def needs_mfa_setup(user: Any) -> bool:
    """Super Users (before touching keys or read rights) and staff (before any admin page) must
    have two-factor authentication: either can hand out every key."""
    if not settings.KAMKEYS_SUPERUSER_MFA_REQUIRED or not getattr(user, "is_authenticated", False):
        return False
    return (user.is_staff or is_super_user(user)) and not is_mfa_enabled(user)


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


def key_action(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Log-in, MFA for Super Users, and a recent (re)authentication, in that order."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if needs_mfa_setup(request.user):
            messages.warning(
                request,
                gettext(
                    "Super Users and staff must turn on two-factor authentication before they "
                    "can download keys or change read rights."
                ),
            )
            return redirect("mfa_index")
        if recently_authenticated(request):
            return view(request, *args, **kwargs)
        if request.method == "POST" and NOT_REPLAYED.intersection(request.POST):
            return _reauthenticate_then_reopen(request)
        return reauthentication_required(view)(request, *args, **kwargs)

    return login_required(guarded)


# allauth replays a POST after the re-authentication it asked for, and until then keeps the
# whole POST in the session, that is in the database. A form with one of these fields (the file
# password of Download file) is not kept: the page opens again and the user types it again.
NOT_REPLAYED = frozenset({"password", "password_repeat"})


def _reauthenticate_then_reopen(request: HttpRequest) -> HttpResponseBase:
    methods = get_account_adapter().get_reauthentication_methods(request.user)
    if not methods:
        raise PermissionDenied
    messages.info(
        request,
        gettext(
            "Please confirm it is you. Then enter the file password again: it is not kept "
            "while you confirm."
        ),
    )
    return HttpResponseRedirect(f"{methods[0]['url']}?{urlencode({'next': request.path})}")


def super_user_action(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """A key action only Super Users may take (read-rights changes): anyone else is refused at
    once, before being asked to re-authenticate for a page they could never use."""
    guarded_view = key_action(view)

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_super_user(request.user):
            raise PermissionDenied(SUPER_USERS_ONLY)
        return guarded_view(request, *args, **kwargs)

    return login_required(guarded)


# --- custody: who may grant Super User or transfer devices ----------------------------------------


class CustodyRefused(PermissionDenied):
    """A change of who holds keys that this staff member may not make; str() says why."""


def custody_refusal(
    actor: Any, *, users: Iterable[Any] = (), organizations: Iterable[Any] = ()
) -> str | None:
    """Why ``actor`` may not make this custody change, or None when they may.

    ``users`` are the accounts whose Super User role or memberships change; ``organizations``
    are those that gain a Super User or a device. Nobody changes their own account's access,
    nor gives Super User or devices to an organization they belong to: another staff member
    must do it, so one stolen staff login cannot hand itself the keys. ``actor`` None is the
    system (management commands, the demo seed).
    """
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    if any(user is not None and user.pk == actor.pk for user in users):
        return gettext(
            "You cannot change the Super User role or memberships of your own account: %(who)s."
        ) % {"who": ANOTHER_STAFF_MEMBER}
    org_ids = {org.pk for org in organizations if org is not None and org.pk is not None}
    if org_ids:
        own = (
            Membership.objects.filter(user_id=actor.pk, organization_id__in=org_ids)
            .select_related("organization")
            .order_by("organization__name")
            .first()
        )
        if own is not None:
            return gettext(
                "You belong to %(organization)s, so you cannot give it a Super User "
                "or devices: %(who)s."
            ) % {"organization": own.organization.name, "who": ANOTHER_STAFF_MEMBER}
    return None


def enforce_custody(
    actor: Any, *, users: Iterable[Any] = (), organizations: Iterable[Any] = ()
) -> None:
    """Raise CustodyRefused when custody_refusal says no (the services' own check)."""
    reason = custody_refusal(actor, users=users, organizations=organizations)
    if reason:
        raise CustodyRefused(reason)


def check_custody_change(
    request: HttpRequest, *, users: Iterable[Any] = (), organizations: Iterable[Any] = ()
) -> None:
    """The gate of every admin route that grants Super User or transfers devices.

    First a recent (re)authentication: if the last one is older than
    ACCOUNT_REAUTHENTICATION_TIMEOUT, allauth's ReauthenticationRequired is raised and its
    middleware sends the staff member to re-authenticate, then replays the request. Then
    custody_refusal, as CustodyRefused.
    """
    if not recently_authenticated(request):
        raise ReauthenticationRequired()
    enforce_custody(request.user, users=list(users), organizations=list(organizations))
