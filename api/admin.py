"""API tokens in the admin: staff see them (never a secret or hash) and may revoke them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api import services
from api.models import ApiToken
from audit.context import AuditContext, Channel


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "scope_list",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email"]
    fields = ("user", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description=_("scopes"))
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes or [])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by their user, who alone sees the secret

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is the audit trail's reference

    @admin.action(description=_("Revoke the selected tokens (audited, the owner is emailed)"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        context = AuditContext.from_request(request, Channel.ADMIN)
        count = sum(
            services.revoke_token(token, context=context)
            for token in queryset.select_related("user")
        )
        messages.success(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
            % {"count": count},
        )
