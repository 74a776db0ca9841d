"""The actions of My devices: register a device, remove devices (Download file: keyfiles.views)."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from accounts.http import AuthenticatedHttpRequest
from audit.context import AuditContext
from devices.forms import RegisterDeviceForm
from devices.selection import selected_devices, selection_count
from devices.services import plan_removal, register_device, remove_devices

WRONG_CODE = gettext_lazy(
    "The serial number and device code do not match a device. Check both numbers on the meter's "
    "label. Attempts are limited."
)


ENDED = gettext_lazy(
    "The owner of this device ended your registration of it, so it cannot be registered again "
    "with its code. Ask the distributor who owns it for read rights if you still need its keys."
)


CLOSED = gettext_lazy(
    "The owner of this device has ended a registration of it, so its code no longer adds it to "
    "anyone's list. Ask the distributor who owns it for read rights if you need its keys."
)


def _locked_message(retry_after: datetime | None) -> str:
    if retry_after is None:
        return gettext(
            "Too many wrong attempts for this serial number or account. Try again later."
        )
    return gettext(
        "Too many wrong attempts for this serial number or account. Try again after %(when)s."
    ) % {"when": formats.date_format(timezone.localtime(retry_after), "DATETIME_FORMAT")}


@login_required
@require_http_methods(["GET", "POST"])
def register(request: AuthenticatedHttpRequest) -> HttpResponse:
    """+ Register device: serial number and the 2-digit device code printed on the meter."""
    status = 200
    if request.method == "POST":
        form = RegisterDeviceForm(request.POST)
        if form.is_valid():
            serial = form.cleaned_data["serial"]
            result = register_device(
                serial=serial,
                code=form.cleaned_data["code"],
                context=AuditContext.from_request(request),
            )
            if result.status == "registered":
                messages.success(
                    request,
                    gettext("Device %(serial)s was added to your list.") % {"serial": serial},
                )
                return redirect("devices:list")
            if result.status == "already":
                messages.info(
                    request,
                    gettext("Device %(serial)s is already in your list.") % {"serial": serial},
                )
                return redirect("devices:list")
            if result.status == "locked":
                form.add_error(None, _locked_message(result.retry_after))
                status = 429
            elif result.status == "ended":
                form.add_error(None, ENDED)
                status = 403
            elif result.status == "closed":
                form.add_error(None, CLOSED)
                status = 403
            else:
                form.add_error(None, WRONG_CODE)
                status = 400
        else:
            status = 400
    else:
        form = RegisterDeviceForm()
    return render(request, "devices/register.html", {"form": form}, status=status)


def nothing_selected(request: HttpRequest, action: str) -> HttpResponse:
    """The one answer of Download file, Remove device and Edit read rights to an empty
    selection: back to My devices, saying what to do."""
    messages.warning(
        request,
        gettext(
            "No devices are selected. Tick devices in My devices first, then choose %(action)s."
        )
        % {"action": gettext(action)},  # "Download file", "Remove device", "Edit read rights"
    )
    return redirect("devices:list")


@login_required
@require_http_methods(["GET", "POST"])
def remove(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Remove device: drops the user's own registrations and read rights for the selection."""
    if selection_count(request) == 0:
        return nothing_selected(request, "Remove device")
    selected = selected_devices(request)
    plan = plan_removal(request.user, selected)
    if plan.total == 0:
        return nothing_selected(request, "Remove device")
    if request.method == "POST":
        done = remove_devices(selected, context=AuditContext.from_request(request))
        if done.removable:
            messages.success(
                request,
                ngettext(
                    "%(count)s device removed from your list.",
                    "%(count)s devices removed from your list.",
                    done.removable,
                )
                % {"count": formats.number_format(done.removable, force_grouping=True)},
            )
        if done.owned:
            messages.warning(request, _owned_message(done.owned))
        return redirect("devices:list")
    return render(
        request, "devices/remove.html", {"plan": plan, "owned_message": _owned_message(plan.owned)}
    )


def _owned_message(owned: int) -> str:
    return ngettext(
        "%(count)s selected device belongs to your organization and stays in the list: "
        "ownership of devices is managed by the manufacturer, who transfers them to your "
        "organization from the sales order. Contact the manufacturer to change it.",
        "%(count)s selected devices belong to your organization and stay in the list: "
        "ownership of devices is managed by the manufacturer, who transfers them to your "
        "organization from the sales order. Contact the manufacturer to change it.",
        owned,
    ) % {"count": formats.number_format(owned, force_grouping=True)}
