"""API tokens, in the account area: list, create (the secret shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import key_action
from accounts.selectors import is_super_user
from api import selectors, services
from api.forms import TokenForm
from api.models import KEY_SCOPES
from audit.context import AuditContext


def _page(request: HttpRequest, form: TokenForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": selectors.tokens_of(request.user),
            "now": timezone.now(),
            "super_user": is_super_user(request.user),
        },
        status=status,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponseBase:
    """The user's tokens and the form for a new one. Anybody asking for keys:read or
    readrights:write goes through the key-action guard first (a recent re-authentication, and
    MFA for Super Users), as Download file does: a token is a year's access to the keys;
    allauth replays the form after the re-authentication."""
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    if KEY_SCOPES & set(form.cleaned_data["scopes"]):
        return key_action(_create)(request, form=form)
    return _create(request, form=form)


def _create(request: HttpRequest, *, form: TokenForm) -> HttpResponseBase:
    try:
        created = services.create_token(
            request.user, context=AuditContext.from_request(request), **form.cleaned()
        )
    except services.TokenError as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    # The only time the token exists outside its holder: this response, never cached.
    return render(
        request,
        "api/token_created.html",
        {"token": created.token, "secret": created.secret},
        status=201,
    )


@never_cache
@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponseBase:
    token = selectors.own_token(request.user, token_id)
    if services.revoke_token(token, context=AuditContext.from_request(request)):
        messages.success(
            request,
            _("The token “%(name)s” is revoked and refused from now on.") % {"name": token.name},
        )
    return redirect("api_tokens:list")
