"""The invitation link: a customer sets a name and a password and is logged in.

The token only appears in the link of the email: the first request puts it into the session and
redirects to a URL without it, so it does not linger in history, logs or Referer headers.
"""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.account.utils import perform_login
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from audit.context import AuditContext
from readrights import services
from readrights.forms import AcceptInvitationForm
from readrights.views import my_devices_url

SESSION_LINK_KEY = "readrights_invitation_token"

REASONS = {
    "invalid": gettext_lazy(
        "This invitation link is not valid. It may have been copied incompletely, or a "
        "newer invitation email replaced it."
    ),
    "used": gettext_lazy(
        "This invitation was already accepted. Log in with your email address and password."
    ),
    "used_logged_in": gettext_lazy(
        "This invitation was already accepted. Its devices are in My devices."
    ),
    "expired": gettext_lazy(
        "This invitation link has expired. Ask the sender to send the invitation again."
    ),
    "cancelled": gettext_lazy("This invitation was withdrawn by the sender."),
    "unconfirmed": gettext_lazy(
        "An account with this email address exists, but the address was never "
        "confirmed. Log in with it once (we email a code to the address to confirm it), then "
        "open the invitation link from the email again."
    ),
}
STATUS = {"invalid": 400, "unconfirmed": 409}


def _invalid(request: HttpRequest, reason: str, invited: str = "") -> HttpResponse:
    request.session.pop(SESSION_LINK_KEY, None)
    status = STATUS.get(reason, 410)
    explanation = REASONS.get(reason, REASONS["invalid"])
    invitee = bool(invited) and request.user.is_authenticated and request.user.email == invited
    if reason == "used" and invitee:
        explanation = REASONS["used_logged_in"]
    return render(
        request,
        "readrights/invitation_invalid.html",
        {
            "reason": reason,
            "explanation": explanation,
            "my_devices_url": my_devices_url() if invitee else "",
        },
        status=status,
    )


@never_cache
def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email: check it, keep the token in the session, drop it from the URL."""
    try:
        services.invitation_for_token(token)
    except services.InvitationInvalid as exc:
        return _invalid(request, exc.reason, exc.email)
    request.session[SESSION_LINK_KEY] = token
    return redirect("readrights:accept")


@never_cache
@sensitive_post_parameters("password1", "password2")
def accept(request: HttpRequest) -> HttpResponse:
    token = request.session.get(SESSION_LINK_KEY, "")
    try:
        invitation = services.invitation_for_token(token)
    except services.InvitationInvalid as exc:
        return _invalid(request, exc.reason, exc.email)
    email = invitation.email
    if request.user.is_authenticated and request.user.email != email:
        return render(request, "readrights/invitation_other_user.html", {"email": email})
    try:
        has_account = services.account_for_invitation(email) is not None
    except services.InvitationInvalid as exc:
        return _invalid(request, exc.reason, exc.email)
    form = AcceptInvitationForm(request.POST or None, email=email)
    if request.method == "POST" and (has_account or form.is_valid()):
        data = form.cleaned_data if not has_account else {}
        try:
            acceptance = services.accept_invitation(
                token=token,
                name=data.get("name", ""),
                password=data.get("password1", ""),
                context=AuditContext.from_request(request),
            )
        except services.InvitationInvalid as exc:
            return _invalid(request, exc.reason, exc.email)
        except ValidationError as exc:
            form.add_error("password1", exc)
        else:
            request.session.pop(SESSION_LINK_KEY, None)
            return _welcome(request, acceptance)
    context = {
        "invitation": invitation,
        "email": email,
        "form": form,
        "has_account": has_account,
        "device_count": invitation.devices.count(),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "readrights/invitation_accept.html", context, status=status)


def _welcome(request: HttpRequest, acceptance: services.Acceptance) -> HttpResponse:
    count = acceptance.device_count
    if acceptance.created:
        messages.success(
            request,
            ngettext(
                "Welcome! Your account is ready; %(count)d device is in My devices.",
                "Welcome! Your account is ready; %(count)d devices are in My devices.",
                count,
            )
            % {"count": count},
        )
        record_authentication(
            request, acceptance.user, method="password", email=acceptance.user.email
        )
        return perform_login(request, acceptance.user, redirect_url=my_devices_url())
    if request.user.is_authenticated:
        messages.success(
            request,
            ngettext(
                "Accepted: %(count)d device was added to My devices.",
                "Accepted: %(count)d devices were added to My devices.",
                count,
            )
            % {"count": count},
        )
        return redirect(my_devices_url())
    messages.success(
        request,
        ngettext(
            "Accepted: %(count)d device was added to your account. Log in with your password.",
            "Accepted: %(count)d devices were added to your account. Log in with your password.",
            count,
        )
        % {"count": count},
    )
    return redirect("account_login")
