"""Admin: the audit log, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


class ReadOnlyAdminMixin:
    """Nothing is added, changed or deleted here: the rows are written by the services alone."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "outcome", "object_type", "count", "ip")
    list_filter = ("action", "outcome", "object_type", "channel")
    search_fields = ("actor_label", "action", "ip")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "actor",
        "actor_label",
        "channel",
        "action",
        "outcome",
        "object_type",
        "object_ids",
        "count",
        "detail",
        "ip",
    )
    fields = readonly_fields
    list_select_related = ("actor",)
    show_full_result_count = False
    actions = None
