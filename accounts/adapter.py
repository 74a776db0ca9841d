"""All allauth customisation lives here.

- Sign-up goes through our email-first registration (accounts.views.register), so allauth's own
  sign-up form is closed and its URL redirects there.
- Every email allauth sends (password reset, "you already have an account", MFA notices, …) is
  rendered here and written to the outbox, so it is an OutboundEmail row sent by Celery after
  the transaction commits, like every other email of the service.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from accounts import emails


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
            "current_site": get_current_site(request),
            "site_name": "kamkeys",
            "site_url": settings.KAMKEYS_SITE_URL,
        }
        ctx.update(context)
        subject = render_to_string(f"{template_prefix}_subject.txt", ctx, request)
        subject = " ".join(subject.splitlines()).strip()
        text = render_to_string(f"{template_prefix}_message.txt", ctx, request).strip()
        try:
            html = render_to_string(f"{template_prefix}_message.html", ctx, request).strip()
        except TemplateDoesNotExist:
            html = ""
        emails.allauth_email(email, subject=subject, text=text, html=html)
