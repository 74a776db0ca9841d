"""Admin: the factory import page, beside the key list (keyvault's key admin, extended)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from audit.context import AuditContext, Channel
from keyfiles.importer import ImportInputError, import_keys
from keyfiles.kem import KEM_MAX_PASSWORD_BYTES
from keyvault.admin import DeviceKeyAdmin
from keyvault.models import DeviceKey

IMPORT_PERMISSION = "keyvault.add_devicekey"


class DeviceKeyImportAdmin(DeviceKeyAdmin):
    """The key list of keyvault, with the import page (its URL name stays
    ``admin:keyvault_devicekey_import``: the key and audit lists link to it)."""

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="keyvault_devicekey_import",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {"can_import": request.user.has_perm(IMPORT_PERMISSION), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Staff upload a factory key file; the report lists every bad row, or what was stored."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        form = ImportKeysForm(request.POST or None, request.FILES or None)
        report = None
        status = 200
        if request.method == "POST":
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    report = import_keys(
                        upload,
                        owner=form.cleaned_data["owner"],
                        fmt=form.cleaned_data["format"],
                        password=form.cleaned_data.get("password") or None,
                        context=AuditContext.from_request(request, Channel.ADMIN),
                        filename=upload.name or "",
                    )
                except ImportInputError as exc:
                    form.add_error(None, str(exc))
                if report is not None and report.ok:
                    form = ImportKeysForm()
            if (form.is_bound and not form.is_valid()) or (report is not None and not report.ok):
                status = 400
        return render(
            request,
            "admin/keyfiles/import.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Import factory keys"),
                "opts": self.model._meta,
                "form": form,
                "report": report,
            },
            status=status,
        )


admin.site.unregister(DeviceKey)
admin.site.register(DeviceKey, DeviceKeyImportAdmin)


# The largest file the import page takes; deploy/nginx.conf lets a little more through on this
# page (multipart overhead), so a larger file gets this form's message, not the proxy's bare 413.
IMPORT_UPLOAD_MAX_MB = 32


class ImportKeysForm(forms.Form):
    file = forms.FileField(
        label=_("Key file"),
        help_text=format_lazy(
            _(
                "CSV with a header row: serial, device_code, type, dek (required); order_no, "
                "type_no, config_no, consumption_type, production_year, kind, gpk1…gpk4 "
                "(optional). Or a KEM file (.kem, or the zip holding it). At most {max} MB; "
                "larger files, and files above about 100,000 rows, are faster with manage.py "
                "import_keys."
            ),
            max=IMPORT_UPLOAD_MAX_MB,
        ),
    )
    format = forms.ChoiceField(
        choices=[("csv", "CSV"), ("kem", "KEM")], initial="csv", widget=forms.RadioSelect
    )
    owner = forms.ModelChoiceField(
        queryset=Organization.objects.order_by("name"),
        label=_("Owner (transferred to)"),
        help_text=_("The organization the devices belong to."),
    )
    password = forms.CharField(
        label=_("KEM password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text=format_lazy(
            _("Only for KEM files: 1 to {max} bytes."), max=KEM_MAX_PASSWORD_BYTES
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_UPLOAD_MAX_MB * 1024 * 1024:
            raise forms.ValidationError(
                _(
                    "This file is %(size)s MB; the import page takes files of at most %(max)d MB. "
                    "Import it with manage.py import_keys on the server."
                )
                % {"size": f"{upload.size / (1024 * 1024):.1f}", "max": IMPORT_UPLOAD_MAX_MB},
                code="too_big",
            )
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        if cleaned.get("format") == "kem":
            password = cleaned.get("password") or ""
            size = len(password.encode("utf-8"))
            if not 1 <= size <= KEM_MAX_PASSWORD_BYTES:
                self.add_error(
                    "password",
                    _("A KEM password is 1 to %(max)d bytes (this one is %(size)d).")
                    % {"max": KEM_MAX_PASSWORD_BYTES, "size": size},
                )
        return cleaned
