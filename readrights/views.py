"""Pages of a distributor: Edit read rights, Assign read rights, revoke, User Administration,
and ending a customer's self-registration of one of the organization's devices.

Thin views: parse the request, call one selector or service, render. Every change is guarded by
``super_user_action``: anybody who is not a Super User gets a 403 at once, a Super User then needs
MFA and a recent authentication; ids outside the user's organizations get a 404 that reveals
nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import SUPER_USERS_ONLY, super_user_action
from accounts.selectors import is_super_user, users_with_verified_emails
from audit.context import AuditContext
from devices.action_views import nothing_selected
from devices.models import Device
from readrights import selectors, serials, services
from readrights.forms import AssignForm

DONE_KEY = "readrights_last_assignment"
PAGE_SIZE = 50


def _require_super_user(request: HttpRequest) -> None:
    if not is_super_user(request.user):
        raise PermissionDenied(SUPER_USERS_ONLY)


def _devices_of(request: HttpRequest) -> tuple[QuerySet[Device], list[str]]:
    """The devices a form acts on: ids posted explicitly (all must be the user's to manage, or
    404) or else the selection of My devices, limited to the user's organizations."""
    ids = request.POST.getlist("device") if request.method == "POST" else []
    if ids:
        return selectors.devices_by_ids(request.user, ids), ids
    return selectors.selected_manageable_devices(request), []


def _back(request: HttpRequest) -> str:
    return (
        "readrights:user_admin" if request.POST.get("next") == "user_admin" else "readrights:edit"
    )


def my_devices_url() -> str:
    return reverse("devices:list")


@login_required
def edit(request: HttpRequest) -> HttpResponse:
    """Who holds read rights on the selected devices, with Assign and Revoke."""
    _require_super_user(request)
    selected_count = selectors.selected_devices(request).order_by().count()
    if selected_count == 0:
        return nothing_selected(request, "Edit read rights")
    devices = selectors.selected_manageable_devices(request)
    count = devices.count()
    registrations = (
        list(selectors.registrations_of(request.user, devices)[: PAGE_SIZE + 1]) if count else []
    )
    context = {
        "selected_count": selected_count,
        "device_count": count,
        "foreign_count": selected_count - count,
        "holders": selectors.holders_of(devices) if count else [],
        "serials": serials.preview(devices) if count else None,
        "registrations": registrations[:PAGE_SIZE],
        "more_registrations": len(registrations) > PAGE_SIZE,
        "invitations": selectors.pending_invitations(request.user, devices) if count else [],
        "my_devices_url": my_devices_url(),
        "now_dt": timezone.now(),
    }
    return render(request, "readrights/edit.html", context)


@super_user_action
def assign(request: HttpRequest) -> HttpResponse:
    """Assign read rights: form → confirm page → done. Nothing is written before "Confirm"."""
    devices, posted_ids = _devices_of(request)
    count = devices.count()
    if count == 0:
        messages.warning(request, _("Select devices of your organization in My devices first."))
        return redirect("readrights:edit")
    if request.method != "POST":
        form = AssignForm(user=request.user)
        return _assign_page(request, form, count, posted_ids)
    form = AssignForm(request.POST, user=request.user)
    action = request.POST.get("action", "review")
    if action == "change":
        form.is_valid()
        return _assign_page(request, form, count, posted_ids)
    if not form.is_valid():
        return _assign_page(request, form, count, posted_ids, status=400)
    if action != "confirm":
        return _confirm_page(request, form, count, posted_ids)
    if request.POST.get("device_count") != str(count):
        messages.warning(request, _("Your selection changed meanwhile. Check the numbers again."))
        return _confirm_page(request, form, count, posted_ids)
    try:
        result = services.assign_read_rights(
            devices_qs=devices,
            emails_in=form.cleaned_data["emails"],
            expires_at=form.expires_at,
            message=form.cleaned_data["message"],
            context=AuditContext.from_request(request),
        )
    except services.NotManageable:
        raise Http404("No such devices") from None
    except ValidationError as exc:
        form.add_error("emails", exc)
        return _assign_page(request, form, count, posted_ids, status=400)
    except services.ReadRightsError as exc:
        form.add_error(None, str(exc))
        return _assign_page(request, form, count, posted_ids, status=400)
    request.session[DONE_KEY] = result.as_dict()
    return redirect("readrights:assign_done")


def _assign_page(
    request: HttpRequest, form: AssignForm, count: int, ids: list[str], status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "device_count": count,
        "device_ids": ids,
        "serials": serials.preview(_devices_of(request)[0]),
    }
    return render(request, "readrights/assign.html", context, status=status)


def _confirm_page(
    request: HttpRequest, form: AssignForm, count: int, ids: list[str]
) -> HttpResponse:
    addresses = form.cleaned_data["emails"]
    known = set(users_with_verified_emails(addresses).values_list("email", flat=True))
    context = {
        "form": form,
        "device_count": count,
        "device_ids": ids,
        "serials": serials.preview(_devices_of(request)[0]),
        "existing": [e for e in addresses if e in known],
        "new": [e for e in addresses if e not in known],
        "expires_on": form.cleaned_data.get("expires_on"),
        "message": form.cleaned_data.get("message"),
    }
    return render(request, "readrights/assign_confirm.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def serial_list(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Every serial an assignment would name, one a line: the devices posted (all the user's to
    manage, or 404) or the selection's devices of the user's organizations. No keys."""
    _require_super_user(request)
    devices, _ids = _devices_of(request)
    response = StreamingHttpResponse(
        serials.serial_lines(devices), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="serial-numbers.txt"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
def assign_done(request: HttpRequest) -> HttpResponse:
    _require_super_user(request)
    result = request.session.pop(DONE_KEY, None)
    if not isinstance(result, dict):
        return redirect("readrights:edit")
    return render(
        request,
        "readrights/assign_done.html",
        {"result": result, "my_devices_url": my_devices_url()},
    )


@require_POST
@super_user_action
def revoke(request: HttpRequest) -> HttpResponse:
    """Revoke one customer's rights on the selected devices or on all the organization's."""
    grantee = selectors.managed_grantee(request.user, request.POST.get("grantee"))
    devices: QuerySet[Device] | None = None
    if request.POST.get("scope") != "all":
        devices, _ids = _devices_of(request)
    ended = services.revoke_read_rights(
        grantee=grantee, devices_qs=devices, context=AuditContext.from_request(request)
    )
    if ended:
        messages.success(
            request,
            ngettext(
                "%(email)s no longer has read access to %(count)d device. They were told by email.",
                "%(email)s no longer has read access to %(count)d devices. "
                "They were told by email.",
                ended,
            )
            % {"email": grantee.email, "count": ended},
        )
    else:
        messages.info(
            request,
            gettext("%(email)s held no working read rights there.") % {"email": grantee.email},
        )
    return redirect(_back(request))


@require_POST
@super_user_action
def resend_invitation(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = selectors.managed_invitation(request.user, pk)
    try:
        services.resend_invitation(invitation, context=AuditContext.from_request(request))
    except services.ReadRightsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            gettext("A new invitation link was sent to %(email)s; older links no longer work.")
            % {"email": invitation.email},
        )
    return redirect(_back(request))


@require_POST
@super_user_action
def cancel_invitation(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = selectors.managed_invitation(request.user, pk)
    try:
        services.cancel_invitation(invitation, context=AuditContext.from_request(request))
    except services.ReadRightsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            gettext("The invitation to %(email)s was cancelled.") % {"email": invitation.email},
        )
    return redirect(_back(request))


@require_POST
@super_user_action
def end_registration(request: HttpRequest, pk: int) -> HttpResponse:
    """End one customer's self-registration (serial + device code) of an own device."""
    registration = selectors.managed_registration(request.user, pk)
    try:
        ended = services.end_registration(
            registration=registration, context=AuditContext.from_request(request)
        )
    except services.NotManageable:
        raise Http404("No such registration") from None
    email, serial = registration.user.email, registration.device.serial
    if ended:
        messages.success(
            request,
            gettext(
                "%(email)s no longer has access to device %(serial)s and cannot register it "
                "again with its code. They were told by email."
            )
            % {"email": email, "serial": serial},
        )
    else:
        messages.info(
            request,
            gettext("The registration of device %(serial)s by %(email)s had ended.")
            % {"serial": serial, "email": email},
        )
    return redirect(_back(request))


@login_required
def user_admin(request: HttpRequest) -> HttpResponse:
    """User Administration: customers holding rights on the organization's devices, customers
    who registered its devices themselves, and pending invitations."""
    _require_super_user(request)
    search = request.GET.get("q", "")[:200].replace("\x00", "")  # PostgreSQL refuses NUL
    holders = selectors.customers_of(request.user, search)
    page = Paginator(holders, PAGE_SIZE).get_page(request.GET.get("page"))
    registrations = selectors.registrations_of(request.user, search=search)
    context: dict[str, Any] = {
        "page": page,
        "customer_count": len(holders),
        "registrations": Paginator(registrations, PAGE_SIZE).get_page(request.GET.get("rpage")),
        "invitations": selectors.pending_invitations(request.user, search=search)[:200],
        "q": search,
        "now_dt": timezone.now(),
    }
    return render(request, "readrights/user_admin.html", context)
