"""The outbox in the admin: staff see delivery state, never the email's content."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from kamkeys import outbox
from kamkeys.models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["to", "template", "status", "attempts", "last_error", "created_at", "sent_at"]
    list_filter = ["status", "template"]
    search_fields = ["to"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "to",
        "template",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "sent_at",
    ]
    actions = ["send_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboundEmail | None = None) -> bool:
        return False

    @admin.action(description=_("Send the selected emails now (unsent ones only)"))
    def send_now(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        ids = list(queryset.exclude(status=OutboundEmail.Status.SENT).values_list("pk", flat=True))
        OutboundEmail.objects.filter(pk__in=ids, status=OutboundEmail.Status.GAVE_UP).update(
            status=OutboundEmail.Status.FAILED
        )
        sent = sum(1 for pk in ids if outbox.deliver(pk))
        level = messages.SUCCESS if sent == len(ids) else messages.WARNING
        self.message_user(
            request,
            ngettext(
                "Sent %(sent)d of %(count)d email.", "Sent %(sent)d of %(count)d emails.", len(ids)
            )
            % {"sent": sent, "count": len(ids)},
            level,
        )
