"""All allauth customisation lives here.

- Sign-up goes through our email-first registration (accounts.views.register), so allauth's own
  sign-up form is closed and its URL redirects there.
- Every email allauth sends (password reset, "you already have an account", MFA notices, …) is
  rendered here and written to the outbox, so it is an OutboundEmail row sent by Celery after
  the transaction commits, like every other email of the service.
- One address per account, and only a verified one identifies anybody
  (accounts.selectors.user_for_verified_email): allauth's login by email and its password reset
  ask that rule instead of allauth's own lookup, which also matches unverified extra addresses.
  Changing the address is allauth's change-email flow (ACCOUNT_CHANGE_EMAIL, verification by
  code, re-authentication first, notice to the old address): the new address is written only
  once its code is entered, so no unverified address is ever stored against an account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from allauth.account import app_settings as allauth_settings
from allauth.account import views as allauth_views
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.auth_backends import AuthenticationBackend
from allauth.account.forms import ResetPasswordForm
from allauth.core import context as allauth_context
from django.contrib.messages import constants as message_constants
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts import emails
from accounts.selectors import user_for_verified_email
from kamkeys import links
from kamkeys.clientip import client_address
from kamkeys.links import public_page_url
from kamkeys.outbox import recipient_language

if TYPE_CHECKING:
    pass


def _has_queued_success(request: HttpRequest) -> bool:
    storage = getattr(request, "_messages", None)
    queued = getattr(storage, "_queued_messages", [])
    return any(m.level == message_constants.SUCCESS for m in queued)


class PublicSite:
    """What allauth's templates read as ``current_site``: the public host, not the Host header."""

    name = "kamkeys"

    def __init__(self, request: HttpRequest | None) -> None:
        self.domain = links.site_origin(request).split("://", 1)[1]

    def __str__(self) -> str:
        return self.domain


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """One way in: "Register here" (accounts:register); allauth's sign-up form stays closed."""
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        """allauth's rate limits and notices ask the project's one client-address rule
        (kamkeys.clientip), not allauth's own reading of X-Forwarded-For, which raises a 500
        when the header has fewer entries than the trusted proxy count."""
        address = client_address(request)
        if not address:
            raise PermissionDenied("Unable to determine the client's address")
        return address

    def add_message(
        self,
        request: HttpRequest,
        level: int,
        message_template: str | None = None,
        message_context: dict[str, Any] | None = None,
        extra_tags: str = "",
        message: str | None = None,
    ) -> None:
        """One banner after logging in: a registration or an accepted invitation has already said
        "Welcome! … you are logged in", so allauth's own "logged in" line is left out then."""
        if message_template == "account/messages/logged_in.txt" and _has_queued_success(request):
            return
        super().add_message(
            request, level, message_template, message_context, extra_tags, message=message
        )

    def _current_request(self) -> HttpRequest | None:
        return allauth_context.request or getattr(self, "request", None)

    def send_notification_mail(
        self,
        template_prefix: str,
        user: Any,
        context: dict[str, Any] | None = None,
        email: str | None = None,
    ) -> None:
        """allauth's security notices (ACCOUNT_EMAIL_NOTIFICATIONS), with the one thing to do if
        the change was not the user's: reset the password. The notice names no token, code or
        password, and leaves out the browser string (it is the sender's to choose)."""
        ctx = {
            "reset_url": public_page_url("account_reset_password", request=self._current_request()),
            **(context or {}),
        }
        super().send_notification_mail(template_prefix, user, ctx, email=email)

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Render allauth's templates now and hand the result to the outbox.

        allauth sends some notices (MFA changes) after the commit, outside its request context:
        then the request the adapter was made for stands in."""
        request = self._current_request()
        ctx: dict[str, Any] = {
            "request": request,
            "email": email,
            "current_site": PublicSite(request),
            "site_name": "kamkeys",
            "site_url": links.public_url("/", request),
        }
        ctx.update(context)
        # Links allauth built itself (sign-up, password reset, …) go through kamkeys.links too.
        for name, value in list(ctx.items()):
            if name.endswith("_url") and isinstance(value, str) and "://" in value:
                ctx[name] = links.rebase(value, request)
        language = recipient_language(email)
        with translation.override(language):
            subject: str = render_to_string(f"{template_prefix}_subject.txt", ctx, request)
            subject = " ".join(subject.splitlines()).strip()
            text = render_to_string(f"{template_prefix}_message.txt", ctx, request).strip()
            try:
                html = render_to_string(f"{template_prefix}_message.html", ctx, request).strip()
            except TemplateDoesNotExist:
                html = ""
        emails.allauth_email(email, subject=subject, text=text, html=html, language=language)

    # --- links in allauth's emails: built by kamkeys.links, never from the Host header ---------
    def get_reset_password_from_key_url(self, key: str) -> str:
        path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
        return links.public_url(path.replace("UID-KEY", quote(key)), allauth_context.request)


class VerifiedEmailAuthenticationBackend(AuthenticationBackend):
    """allauth's backend, but an email login finds only the account whose verified login
    address it is (allauth's own lookup also matches unverified extra addresses)."""

    def _authenticate_by_email(self, email: str, password: str) -> Any:
        if not email or allauth_settings.LoginMethod.EMAIL not in allauth_settings.LOGIN_METHODS:
            return None
        return self._check_password(user_for_verified_email(email), password)


class VerifiedEmailResetPasswordForm(ResetPasswordForm):
    """A reset link resets only the account whose verified login address was entered; any
    other address gets allauth's "no account with this address" email, as before."""

    def clean_email(self) -> str:
        email = super().clean_email()
        user = user_for_verified_email(email)
        self.users = [user] if user is not None and user.is_active else []
        return email


class LoginView(allauth_views.LoginView):
    """allauth's login page, but a login refused by the failed-login rate limit answers 429
    Too Many Requests (with the same message), so clients and monitoring see what it is."""

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        codes = {error.code for error in form.non_field_errors().as_data()}
        if "too_many_login_attempts" in codes:
            response.status_code = 429
        return response
