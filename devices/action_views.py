"""The actions of My devices: register a device, remove devices, download the key file."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.access import key_action
from devices.forms import RegisterDeviceForm
from devices.selection import selected_devices, selection_count
from devices.services import plan_removal, register_device, remove_devices

WRONG_CODE = (
    "The serial number and device code do not match a device. Check both numbers on the meter's "
    "label. Attempts are limited."
)


ENDED = (
    "The owner of this device ended your registration of it, so it cannot be registered again "
    "with its code. Ask the distributor who owns it for read rights if you still need its keys."
)


def _locked_message(retry_after: datetime | None) -> str:
    when = f" after {retry_after:%Y-%m-%d %H:%M} UTC" if retry_after else " later"
    return f"Too many wrong attempts for this serial number or account. Try again{when}."


@login_required
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """+ Register device: serial number and the 2-digit device code printed on the meter."""
    status = 200
    if request.method == "POST":
        form = RegisterDeviceForm(request.POST)
        if form.is_valid():
            serial = form.cleaned_data["serial"]
            result = register_device(
                request.user, serial, form.cleaned_data["code"], request=request
            )
            if result.status == "registered":
                messages.success(request, f"Device {serial} was added to your list.")
                return redirect("devices:list")
            if result.status == "already":
                messages.info(request, f"Device {serial} is already in your list.")
                return redirect("devices:list")
            if result.status == "locked":
                form.add_error(None, _locked_message(result.retry_after))
                status = 429
            elif result.status == "ended":
                form.add_error(None, ENDED)
                status = 403
            else:
                form.add_error(None, WRONG_CODE)
                status = 400
        else:
            status = 400
    else:
        form = RegisterDeviceForm()
    return render(request, "devices/register.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def remove(request: HttpRequest) -> HttpResponse:
    """Remove device: drops the user's own registrations and read rights for the selection."""
    selected = selected_devices(request)
    plan = plan_removal(request.user, selected)
    if plan.total == 0:
        messages.warning(request, "Select the devices to remove first.")
        return redirect("devices:list")
    if request.method == "POST":
        done = remove_devices(request.user, selected, request=request)
        if done.removable:
            messages.success(request, f"{done.removable:,} device(s) removed from your list.")
        if done.owned:
            messages.warning(request, _owned_message(done.owned))
        return redirect("devices:list")
    return render(
        request, "devices/remove.html", {"plan": plan, "owned_message": _owned_message(plan.owned)}
    )


def _owned_message(owned: int) -> str:
    return (
        f"{owned:,} selected device(s) belong to your organization and stay in the list: "
        "ownership of devices is managed by the manufacturer, who transfers them to your "
        "organization from the sales order. Contact the manufacturer to change it."
    )


@never_cache
@key_action
@require_http_methods(["GET", "POST"])
def download(request: HttpRequest) -> HttpResponse:
    """Download file: choose the format and a file password; the browser downloads the file."""
    from keyvault.crypto import KeyUnwrapError
    from keyvault.downloads import build_download
    from keyvault.forms import DownloadForm

    count = selection_count(request)
    if count == 0:
        messages.warning(request, "Select the devices whose keys you want to download first.")
        return redirect("devices:list")
    status = 200
    if request.method == "POST":
        form = DownloadForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                result = build_download(
                    selected_devices(request),
                    form.cleaned_data["format"],
                    form.cleaned_data["password"],
                    actor=request.user,
                    request=request,
                )
            except ValidationError as exc:
                form.add_error("password", exc)
            except KeyUnwrapError:
                # Already audited by keyvault; the file is refused whole, before its first byte.
                form.add_error(
                    None,
                    "The stored keys of some selected devices failed their integrity check, so "
                    "no file was written. The failure has been recorded; please contact the "
                    "manufacturer's support.",
                )
                return render(
                    request, "devices/download.html", {"form": form, "count": count}, status=409
                )
            else:
                response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
                response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
                response["Cache-Control"] = "no-store"
                return response
        status = 400
    else:
        form = DownloadForm(user=request.user)
    return render(request, "devices/download.html", {"form": form, "count": count}, status=status)
