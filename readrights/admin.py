"""Staff see every read right and invitation. Tokens never appear: only a hash is stored, and it
is not shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.context import AuditContext, Channel
from audit.models import Action
from audit.services import record
from readrights.models import Invitation, ReadRight

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _DeviceCount(TypedDict):
    n_devices: int


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("live", "Working"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ReadRight]) -> QuerySet[ReadRight]:
        now = timezone.now()
        if self.value() == "live":
            return queryset & ReadRight.objects.live(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ReadRight)
class ReadRightAdmin(admin.ModelAdmin):
    list_display = (
        "device",
        "grantee",
        "granted_by",
        "granted_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    list_filter = (LiveFilter, "granted_at")
    search_fields = ("grantee__email", "granted_by__email", "device__serial")
    list_select_related = ("device", "grantee", "granted_by", "revoked_by")
    fields = (
        "device",
        "grantee",
        "granted_by",
        "granted_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = fields
    date_hierarchy = "granted_at"
    show_full_result_count = False
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReadRight | None = None) -> bool:
        """Revoke instead (audited): a delete ended the customer's access with no audit event
        and took the record of who held the device with it."""
        return False

    @admin.action(description=_("Revoke the selected read rights (access ends at once)"))
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ReadRight]) -> None:
        """Staff end rights without the customer email a distributor's revocation sends; the
        change is audited like any other revocation."""
        with transaction.atomic():
            rows = list(queryset.filter(revoked_at__isnull=True).values_list("pk", "device_id"))
            ReadRight.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                revoked_at=timezone.now(), revoked_by=request.user
            )
            record(
                Action.REVOKE,
                context=AuditContext.from_request(request, Channel.ADMIN),
                object_type="device",
                object_ids=[device_id for _, device_id in rows],
                count=len(rows),
                detail={"by": "staff", "read_rights": [pk for pk, _ in rows][:1000]},
            )
        self.message_user(
            request,
            ngettext("%(count)d read right revoked.", "%(count)d read rights revoked.", len(rows))
            % {"count": len(rows)},
            messages.SUCCESS,
        )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "organization",
        "invited_by",
        "device_count",
        "created_at",
        "last_sent_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("organization",)
    search_fields = ("email", "invited_by__email", "organization__name")
    list_select_related = ("organization", "invited_by")
    fields = (
        "email",
        "organization",
        "invited_by",
        "message",
        "rights_expire_at",
        "created_at",
        "last_sent_at",
        "send_count",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invitation]:
        return super().get_queryset(request).annotate(n_devices=Count("devices"))

    @admin.display(description=_("devices"), ordering="n_devices")
    def device_count(self, obj: WithAnnotations[Invitation, _DeviceCount]) -> int:
        return obj.n_devices

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Invitation | None = None) -> bool:
        """The distributor cancels an invitation (audited); a delete left no trace of it."""
        return False
