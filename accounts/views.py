"""Registration (email first, activation link, complete), password check, access requests."""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.account.internal.flows.signup import complete_signup
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import AccessRequestForm, CompleteRegistrationForm, RegisterForm
from accounts.http import AuthenticatedHttpRequest
from accounts.languages import supported
from accounts.middleware import set_language_cookie
from accounts.models import User
from accounts.passwords import password_rules, rule_report
from audit.context import AuditContext
from kamkeys.views import bad_request

# The activation token moves from the link into the session at once, so the page that asks for
# the password has a clean URL (nothing to leak through history, logs or the Referer header).
ACTIVATION_SESSION_KEY = "accounts_activation_token"
REGISTER_EMAIL_SESSION_KEY = "accounts_register_email"


def _link_problem(request: HttpRequest, problem: str, status: int = 400) -> HttpResponse:
    """One page for every link that cannot be used, saying why and what to do instead."""
    return render(request, "accounts/link_problem.html", {"problem": problem}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Step 1: an email address. The answer never says whether it is registered."""
    if request.user.is_authenticated:
        return redirect("home")
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not ratelimit.consume(request, action="register"):
            return render(request, "accounts/too_many.html", status=429)
        email = services.normalize_email(form.cleaned_data["email"])
        # Per address: repeated sends are answered the same but mail that address no more often.
        if ratelimit.consume(request, action="register_email", key=email):
            services.start_registration(email, context=AuditContext.from_request(request))
        request.session[REGISTER_EMAIL_SESSION_KEY] = email
        return redirect("accounts:register_sent")
    status = 400 if form.is_bound else 200
    return render(request, "accounts/register.html", {"form": form}, status=status)


@never_cache
def register_sent(request: HttpRequest) -> HttpResponse:
    """The neutral answer, the same for known and unknown addresses."""
    email = request.session.get(REGISTER_EMAIL_SESSION_KEY, "")
    return render(
        request,
        "accounts/register_sent.html",
        {"email": email, "expire_days": settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS},
    )


@never_cache
def activate(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: check it, keep it in the session, continue on a clean URL."""
    try:
        email = services.read_activation_token(token)
    except services.ActivationLinkExpired:
        return _link_problem(request, "expired")
    except services.ActivationLinkInvalid:
        return _link_problem(request, "invalid")
    if request.user.is_authenticated:
        if request.user.email == email:
            messages.info(request, _("Your account is active and you are logged in."))
            return redirect("home")
        return _link_problem(request, "logged_in")
    if services.email_has_account(email):
        return _link_problem(request, "used")
    request.session[ACTIVATION_SESSION_KEY] = token
    return redirect("accounts:complete_registration")


@never_cache
@sensitive_variables("form")
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def complete_registration(request: HttpRequest) -> HttpResponse:
    """Step 2: name (optional), password twice → the user exists, is active and logged in."""
    token = request.session.get(ACTIVATION_SESSION_KEY)
    if not token:
        return _link_problem(request, "missing")
    if request.user.is_authenticated:
        return _link_problem(request, "logged_in")
    try:
        email = services.read_activation_token(token)
    except services.ActivationLinkExpired:
        request.session.pop(ACTIVATION_SESSION_KEY, None)
        return _link_problem(request, "expired")
    except services.ActivationLinkInvalid:
        request.session.pop(ACTIVATION_SESSION_KEY, None)
        return _link_problem(request, "invalid")
    form = CompleteRegistrationForm(request.POST or None, email=email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.complete_registration(
                services.NewAccount(
                    email=email,
                    name=form.cleaned_data["name"],
                    password=form.cleaned_data["password1"],
                )
            )
        except services.AlreadyRegistered:
            request.session.pop(ACTIVATION_SESSION_KEY, None)
            return _link_problem(request, "used")
        request.session.pop(ACTIVATION_SESSION_KEY, None)
        request.session.pop(REGISTER_EMAIL_SESSION_KEY, None)
        return _log_in_new_user(request, user)
    if not form.is_bound and services.email_has_account(email):
        request.session.pop(ACTIVATION_SESSION_KEY, None)
        return _link_problem(request, "used")
    return render(
        request,
        "accounts/complete_registration.html",
        {"form": form, "email": email, "rules": password_rules()},
        status=400 if form.is_bound else 200,
    )


def _log_in_new_user(request: HttpRequest, user: User) -> HttpResponse:
    """allauth's own login flow: the session key rotates and the password login is recorded."""
    record_authentication(request, user, method="password", email=user.email)
    messages.success(request, _("Welcome! Your registration is complete and you are logged in."))
    return complete_signup(request, user=user, redirect_url=reverse("home"))


@never_cache
@sensitive_variables("password")
@sensitive_post_parameters("password")
@require_POST
def password_check(request: HttpRequest) -> JsonResponse:
    """Live feedback while typing: which rules pass. The forms check again on submit."""
    if not ratelimit.consume(request, action="password_check"):
        return JsonResponse({"error": "Too many checks, slow down."}, status=429)
    password = request.POST.get("password", "")[:1024]
    name = request.POST.get("name", "")[:150]
    if request.user.is_authenticated:
        owner = User(email=request.user.email, name=name or request.user.name)
    else:
        # The address the page shows (an invitation's); an activation link's address wins.
        email = request.POST.get("email", "")[:254]
        token = request.session.get(ACTIVATION_SESSION_KEY)
        if token:
            try:
                email = services.read_activation_token(token)
            except services.RegistrationError:
                email = ""
        owner = User(email=email, name=name)
    return JsonResponse({"rules": rule_report(password, owner)})


@login_required
@require_http_methods(["GET", "POST"])
def request_access(request: AuthenticatedHttpRequest) -> HttpResponse:
    """ "Request access to your meters": a Super User login for the user's organization."""
    form = AccessRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.request_access(
                    customer_name=form.cleaned_data["customer_name"],
                    customer_number=form.cleaned_data["customer_number"],
                    is_distributor=form.cleaned_data["is_distributor"],
                    message=form.cleaned_data["message"],
                    context=AuditContext.from_request(request),
                )
            except services.AccessRequestError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    _(
                        "Thank you: your request was sent to our staff. You will get an email when "
                        "it is decided."
                    ),
                )
                return redirect("accounts:request_access")
    return render(
        request,
        "accounts/request_access.html",
        {
            "form": form,
            "pending": selectors.pending_access_request(request.user),
            "history": selectors.access_requests_of(request.user),
            "super_user_of": selectors.super_user_organizations(request.user),
        },
        status=status,
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language chosen in the header: kept in a cookie and, for a logged-in user, on the
    account (their pages and emails follow it from then on); then back to the same page."""
    language = supported(request.POST.get("language"))
    if not language or language not in dict(settings.LANGUAGES):
        return bad_request(request)
    if request.user.is_authenticated:
        services.set_language(request.user, language)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("home")
    translation.activate(language)
    response = redirect(target)
    set_language_cookie(response, language)
    return response
