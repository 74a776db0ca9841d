"""Download file: the page of My devices that writes the selected devices' keys to a file."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.access import key_action
from audit.context import AuditContext
from devices.action_views import nothing_selected
from devices.selection import selection_condition, selection_count
from keyfiles.downloads import Download, build_download
from keyfiles.forms import DownloadForm
from keyvault.crypto import KeyUnwrapError


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def download(request: HttpRequest) -> HttpResponseBase:
    """Download file: choose the format and a file password; the browser downloads the file.
    An empty selection is answered before anyone is asked to re-authenticate."""
    count = selection_count(request)
    if count == 0:
        return nothing_selected(request, "Download file")
    return _download(request, count=count)


MADE_COOKIE = "kamkeys_download_made"


def _set_made_cookie(response: HttpResponseBase, notice: str, result: Download) -> None:
    """Tell the page that sent the form that its file is on its way: the page stays in place
    during a download, so its script watches for this cookie (the page's token, the number of
    devices and the file's name; nothing secret) and then says so and clears the form."""
    if not notice:
        return
    response.set_cookie(
        MADE_COOKIE,
        f"{notice}.{result.count}.{result.filename}",
        max_age=120,
        path=reverse("keyfiles:download"),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=False,  # read by the page's script
        samesite="Strict",
    )


@key_action
def _download(request: HttpRequest, *, count: int) -> HttpResponseBase:
    status = 200
    if request.method == "POST":
        form = DownloadForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                result = build_download(
                    which=selection_condition(request),
                    fmt=form.cleaned_data["format"],
                    password=form.cleaned_data["checked_password"],
                    context=AuditContext.from_request(request),
                )
            except ValidationError as exc:
                form.add_error("password", exc)
            except KeyUnwrapError:
                # Already audited by keyvault; the file is refused whole, before its first byte.
                form.add_error(
                    None,
                    _(
                        "The stored keys of some selected devices failed their integrity check, so "
                        "no file was written. The failure has been recorded; please contact the "
                        "manufacturer's support."
                    ),
                )
                return render(
                    request, "keyfiles/download.html", {"form": form, "count": count}, status=409
                )
            else:
                response = StreamingHttpResponse(result.chunks, content_type=result.content_type)
                response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
                response["Cache-Control"] = "no-store"
                _set_made_cookie(response, form.cleaned_data["notice"], result)
                return response
        status = 400
    else:
        form = DownloadForm(user=request.user)
    return render(request, "keyfiles/download.html", {"form": form, "count": count}, status=status)
