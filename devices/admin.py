"""Devices in the admin: the manufacturer's staff find devices and transfer their ownership.

Keys are not here (the key vault admin shows key metadata only) and the device code hash is never
shown. Every ownership change is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import record
from devices.models import Device, DeviceRegistration


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["serial", "device_type", "kind", "order_no", "owner", "production_year"]
    list_filter = ["kind", "device_type", "consumption_type"]
    search_fields = ["=serial", "order_no", "owner__name", "owner__customer_number"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]
    show_full_result_count = False  # exact counts of millions of rows belong to My devices
    fields = [
        "manufacturer",
        "serial",
        "kind",
        "device_type",
        "type_no",
        "config_no",
        "consumption_type",
        "production_year",
        "order_no",
        "owner",
        "created_at",
    ]
    readonly_fields = ["manufacturer", "serial", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices arrive with their keys through the factory import

    def has_delete_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        return False  # a device's keys and audit trail outlive a mistake in the admin

    def save_model(self, request: HttpRequest, obj: Device, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "owner" in form.changed_data:
            record(
                "transfer",
                actor=request.user,
                request=request,
                object_type="device",
                object_ids=[obj.pk],
                detail={"owner_id": obj.owner_id},
            )


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
