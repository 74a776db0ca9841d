"""All allauth customisation lives here.

- Sign-up goes through our email-first registration (accounts.views.register), so allauth's own
  sign-up form is closed and its URL redirects there.
- Every email allauth sends (password reset, "you already have an account", MFA notices, …) is
  rendered here and written to the outbox, so it is an OutboundEmail row sent by Celery after
  the transaction commits, like every other email of the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import emails
from kamkeys import links

if TYPE_CHECKING:
    from allauth.account.models import EmailConfirmation


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

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Render allauth's templates now and hand the result to the outbox."""
        request = allauth_context.request
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
        subject = render_to_string(f"{template_prefix}_subject.txt", ctx, request)
        subject = " ".join(subject.splitlines()).strip()
        text = render_to_string(f"{template_prefix}_message.txt", ctx, request).strip()
        try:
            html = render_to_string(f"{template_prefix}_message.html", ctx, request).strip()
        except TemplateDoesNotExist:
            html = ""
        emails.allauth_email(email, subject=subject, text=text, html=html)

    # --- links in allauth's emails: built by kamkeys.links, never from the Host header ---------
    def get_reset_password_from_key_url(self, key: str) -> str:
        path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
        return links.public_url(path.replace("UID-KEY", quote(key)), allauth_context.request)

    def get_email_confirmation_url(
        self, request: HttpRequest | None, emailconfirmation: EmailConfirmation
    ) -> str:
        path = reverse("account_confirm_email", args=[emailconfirmation.key])
        return links.public_url(path, request or allauth_context.request)
