"""Admin: stored keys, metadata only, never bytes (keyfiles adds the factory import page)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.admin import ReadOnlyAdminMixin
from keyvault.models import DeviceKey


@admin.register(DeviceKey)
class DeviceKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("serial", "device_type", "name", "kek_version", "updated_at")
    list_filter = ("kek_version", "name")
    search_fields = ("device__serial",)
    fields = ("device", "name", "kek_version", "updated_at")  # never the wrapped bytes
    readonly_fields = fields
    list_select_related = ("device",)
    show_full_result_count = False
    actions = None

    @admin.display(description=_("serial"), ordering="device__serial")
    def serial(self, obj: DeviceKey) -> str:
        return obj.device.serial

    @admin.display(description=_("type"))
    def device_type(self, obj: DeviceKey) -> str:
        return obj.device.device_type
