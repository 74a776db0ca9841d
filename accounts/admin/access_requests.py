"""Super User access requests: approve (into an existing or a new organization) or reject."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import access, selectors, services
from accounts.access import CustodyRefused
from accounts.forms import OrganizationChoiceForm, RejectForm
from accounts.models import AccessRequest, Organization
from audit.context import AuditContext, Channel


def _organization_for(access_request: AccessRequest) -> dict[str, Any]:
    """The approval form's first answer: the organization the request names, if one matches,
    else a new one filled in from the request."""
    match = selectors.matching_organization(access_request)
    if match is not None:
        return {"organization": match.pk}
    return {
        "new_name": access_request.customer_name,
        "new_customer_number": access_request.customer_number,
        "new_kind": Organization.Kind.DISTRIBUTOR
        if access_request.is_distributor
        else Organization.Kind.CUSTOMER,
    }


class DistributorFilter(admin.BooleanFieldListFilter):
    """The requester's "I am a distributor …" answer, under a title that fits the sidebar."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("distributor")


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "customer_name",
        "customer_number",
        "distributor",
        "status",
        "created_at",
        "decided_by",
    ]
    list_filter = ["status", ("is_distributor", DistributorFilter)]
    search_fields = ["user__email", "user__name", "customer_name", "customer_number"]
    list_select_related = ["user", "decided_by"]

    readonly_fields = [
        "user",
        "customer_name",
        "customer_number",
        "is_distributor",
        "message",
        "status",
        "organization",
        "decided_by",
        "decided_at",
        "reason",
        "created_at",
    ]
    fieldsets = [
        (
            None,
            {
                "description": _(
                    "To decide, tick the request in the list and choose the action "
                    "“Approve…” (choose or create the organization) or “Reject…” (with a reason). "
                    "The requester is emailed either way."
                ),
                "fields": [
                    "user",
                    "customer_name",
                    "customer_number",
                    "is_distributor",
                    "message",
                    "created_at",
                ],
            },
        ),
        ("Decision", {"fields": ["status", "organization", "reason", "decided_by", "decided_at"]}),
    ]
    actions = ["approve", "reject"]

    @admin.display(description=_("Distributor"), boolean=True, ordering="is_distributor")
    def distributor(self, access_request: AccessRequest) -> bool:
        return access_request.is_distributor

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users make requests; staff decide them

    def _pending(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        pending = queryset.filter(status=AccessRequest.Status.PENDING).select_related("user")
        if not pending.exists():
            self.message_user(
                request, _("None of the selected requests is pending."), messages.ERROR
            )
            return None
        return pending

    @admin.action(description=_("Approve… (choose or create the organization)"))
    def approve(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        pending = self._pending(request, queryset)
        if pending is None:
            return None
        applying = "apply" in request.POST
        first = pending.first()
        assert first is not None  # _pending answers None when nothing is pending
        form = OrganizationChoiceForm(
            request.POST if applying else None, initial=_organization_for(first)
        )
        requests = list(pending)
        chosen = form.cleaned_data.get("organization") if applying and form.is_valid() else None
        try:
            # Nobody approves their own request, nor into an organization they belong to.
            access.check_custody_change(
                request, users=[r.user for r in requests], organizations=[chosen]
            )
        except CustodyRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        if applying and form.is_valid():
            self._approve_into(request, requests, form)
            return None
        return self._choose_organization_page(request, pending, form, applying=applying)

    def _approve_into(
        self, request: HttpRequest, requests: list[AccessRequest], form: OrganizationChoiceForm
    ) -> None:
        """All of the requests into the chosen (or new) organization, or none of them."""
        try:
            with transaction.atomic():
                organization = form.get_or_create_organization()
                context = AuditContext.from_request(request, Channel.ADMIN)
                for access_request in requests:
                    services.approve_access_request(
                        access_request=access_request,
                        organization=organization,
                        context=context,
                    )
        except (services.AccessRequestError, CustodyRefused) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext(
                "Approved %(count)d request: Super User of %(organization)s. "
                "The requester was emailed.",
                "Approved %(count)d requests: Super User of %(organization)s. "
                "The requesters were emailed.",
                len(requests),
            )
            % {"count": len(requests), "organization": organization},
            messages.SUCCESS,
        )

    def _choose_organization_page(
        self,
        request: HttpRequest,
        pending: QuerySet,
        form: OrganizationChoiceForm,
        *,
        applying: bool,
    ) -> HttpResponse:
        return render(
            request,
            "accounts/admin/choose_organization.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Approve access requests"),
                "intro": _(
                    "These requesters become Super Users of the organization you choose "
                    "and are told by email:"
                ),
                "objects": pending,
                "form": form,
                "action": "approve",
                "opts": self.model._meta,
                "button": _("Approve"),
            },
            status=400 if applying else 200,
        )

    @admin.action(description=_("Reject… (with a reason)"))
    def reject(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        pending = self._pending(request, queryset)
        if pending is None:
            return None
        applying = "apply" in request.POST
        form = RejectForm(request.POST if applying else None)
        if applying and form.is_valid():
            count = 0
            try:
                context = AuditContext.from_request(request, Channel.ADMIN)
                with transaction.atomic():
                    for access_request in pending:
                        services.reject_access_request(
                            access_request=access_request,
                            reason=form.cleaned_data["reason"],
                            context=context,
                        )
                        count += 1
            except services.AccessRequestError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.message_user(
                request,
                ngettext(
                    "Rejected %(count)d request; the requester was emailed.",
                    "Rejected %(count)d requests; the requesters were emailed.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
            return None
        return render(
            request,
            "accounts/admin/reject.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reject access requests",
                "objects": pending,
                "form": form,
                "action": "reject",
                "opts": self.model._meta,
            },
            status=400 if applying else 200,
        )
