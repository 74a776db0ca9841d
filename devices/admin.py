"""Devices in the admin: the manufacturer's staff find devices and transfer their ownership.

Keys are not here (the key vault admin shows key metadata only) and the device code hash is never
shown. A transfer hands the device's keys to the new owner's Super Users, so it goes through
accounts.access.check_custody_change (a recent sign-in; never to an organization the staff member
belongs to) and devices.services.transfer_device (audited, emailed to both owners' Super Users and
staff).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.access import CustodyRefused
from audit.context import AuditContext, Channel
from devices import services
from devices.models import Device, DeviceRegistration


class DeviceAdminForm(forms.ModelForm):
    """A changed owner is checked by the custody rule before anything is saved."""

    request: HttpRequest | None = None  # set for each request by DeviceAdmin.get_form

    class Meta:
        model = Device
        fields = ["owner"]  # the admin passes its own field list

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        if self.instance.pk and "owner" in self.changed_data and self.request is not None:
            try:
                access.check_custody_change(self.request, organizations=[cleaned.get("owner")])
            except CustodyRefused as exc:
                self.add_error("owner", str(exc))
        return cleaned


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceAdminForm
    list_display = ["serial", "device_type", "kind", "order_no", "owner", "production_year"]
    list_filter = ["kind", "device_type", "consumption_type"]
    search_fields = ["=serial", "order_no", "owner__name", "owner__customer_number"]
    search_help_text = _(
        "Serial number: all 8 digits. Order number, organization name or customer number: "
        "any part of it."
    )
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]
    show_full_result_count = False  # exact counts of millions of rows belong to My devices
    fields = tuple(Device.data_fields())  # one column list: Device._meta
    readonly_fields = ["manufacturer", "serial", "created_at", "changed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices arrive with their keys through the factory import

    def has_delete_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False  # a device's keys and audit trail outlive a mistake in the admin

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # noqa: ANN201
        # A new subclass of self.form (DeviceAdminForm) for each call.
        form = cast("type[DeviceAdminForm]", super().get_form(request, obj, change, **kwargs))
        form.request = request
        return form

    def save_model(self, request: HttpRequest, obj: Device, form: Any, change: bool) -> None:
        """Other fields are saved as they are, and audited; a new owner goes through
        transfer_device."""
        context = AuditContext.from_request(request, Channel.ADMIN)
        if change:
            services.record_device_edit(
                device=obj,
                changes={
                    name: (form.initial.get(name), form.cleaned_data.get(name))
                    for name in form.changed_data
                    if name != "owner"
                },
                context=context,
            )
        if not (change and "owner" in form.changed_data):
            super().save_model(request, obj, form, change)
            return
        new_owner = obj.owner
        obj.owner_id = form.initial.get("owner")
        super().save_model(request, obj, form, change)
        services.transfer_device(device=obj, new_owner=new_owner, context=context)


@admin.register(DeviceRegistration)
class DeviceRegistrationAdmin(admin.ModelAdmin):
    list_display = ["device", "user", "created_at"]
    search_fields = ["=device__serial", "user__email"]
    list_select_related = ["device", "user"]
    raw_id_fields = ["device", "user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeviceRegistration]:
        return super().get_queryset(request).select_related("device", "user")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: DeviceRegistration | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: DeviceRegistration | None = None
    ) -> bool:
        """The owner ends a registration (audited, the customer is told, the row stays and
        blocks registering again with the code); a delete did none of that."""
        return False
