"""Organizations in the admin, with their memberships (audited like every Super User change)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin.memberships import MembershipInline, save_memberships_audited
from accounts.models import Membership, Organization

# --- organizations ------------------------------------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "customer_number", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "customer_number"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A delete took every Super User membership and pending invitation of the
        organization with it, unaudited and unannounced (an organization owning devices could
        not be deleted anyway): Super User roles are revoked one by one, audited."""
        return False

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_memberships_audited(request, formset)
        else:
            super().save_formset(request, form, formset, change)


# --- access requests ------------------------------------------------------------------------------
