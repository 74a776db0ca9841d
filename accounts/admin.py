"""Django admin for staff: users, organizations, Super User access requests.

Every grant and revoke of Super User — by approving a request, by the user actions, or by
editing a membership inline — goes through accounts.services, which checks the custody rule
(accounts.access.custody_refusal), audits it and emails the user, the organization's Super Users
and staff. Each route first calls accounts.access.check_custody_change: a grant needs a recent
sign-in, and nobody grants to their own account or into an organization they belong to. The
site itself (allauth's login, two-factor authentication for staff) is kamkeys.admin_site.
"""

from __future__ import annotations

from typing import Any, cast

from allauth.account import admin as allauth_admin
from allauth.account.models import EmailAddress
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import access, selectors, services
from accounts.access import CustodyRefused
from accounts.forms import OrganizationChoiceForm, RejectForm
from accounts.models import AccessRequest, Membership, Organization, User
from audit.context import AuditContext, Channel

# --- memberships (inline on users and organizations) ----------------------------------------------


class MembershipFormSet(BaseInlineFormSet):
    """Memberships edited inline: each change is checked by the one custody rule before
    anything is saved. A Super User gained needs a recent sign-in; nobody edits their own
    memberships, or gives Super User in an organization they belong to."""

    request: HttpRequest | None = None  # set for each request by MembershipInline.get_formset

    def clean(self) -> None:
        super().clean()
        if self.request is None:
            return
        before = {
            m.pk: m
            for m in Membership.objects.filter(
                pk__in=[f.instance.pk for f in self.forms if f.instance.pk]
            ).select_related("user", "organization")
        }
        touched: list[Any] = []
        gained_orgs: list[Any] = []  # organizations that gain a Super User
        for form in self.forms:
            if not hasattr(form, "cleaned_data"):
                continue
            # BaseFormSet._should_delete_form (Django's own test for a ticked DELETE box) is
            # missing from django-stubs.
            deleted = self.can_delete and self._should_delete_form(form)  # type: ignore[attr-defined]
            old = before.get(form.instance.pk)
            if not deleted and not form.has_changed():
                continue
            user = form.cleaned_data.get("user")
            organization = form.cleaned_data.get("organization")
            touched += [u for u in (old.user if old else None, user) if u is not None]
            if deleted or organization is None:
                continue
            is_su = form.cleaned_data.get("role") == Membership.Role.SUPER_USER
            was_su = old is not None and old.role == Membership.Role.SUPER_USER
            moved = old is not None and (old.organization_id, old.user_id) != (
                organization.pk,
                getattr(user, "pk", None),
            )
            if is_su and (not was_su or moved):
                gained_orgs.append(organization)
        if not touched:
            return
        try:
            if gained_orgs:
                access.check_custody_change(self.request, users=touched, organizations=gained_orgs)
            else:
                access.enforce_custody(self.request.user, users=touched)
        except CustodyRefused as exc:
            raise forms.ValidationError(str(exc)) from exc


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    fields = ["user", "organization", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user", "organization"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # A new subclass of self.formset (MembershipFormSet) for each call.
        formset = cast("type[MembershipFormSet]", super().get_formset(request, obj, **kwargs))
        formset.request = request
        return formset

    def _own_account(self, request: HttpRequest, obj: Any) -> bool:
        """On the staff member's own user page the memberships are shown, not editable."""
        return isinstance(obj, User) and bool(access.custody_refusal(request.user, users=[obj]))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._own_account(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._own_account(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._own_account(request, obj) and super().has_delete_permission(request, obj)


def save_memberships_audited(request: HttpRequest, formset: Any) -> None:
    """Save an inline of memberships; each Super User role gained or lost (a role, organization
    or user changed, a row added or deleted) goes through services.record_role_change (custody
    rule, audit, emails to the user, the organization's Super Users and staff)."""
    su = Membership.Role.SUPER_USER
    context = AuditContext.from_request(request, Channel.ADMIN)
    with transaction.atomic():
        # As stored, before saving: the forms' instances already carry the posted values, and
        # deleting one clears its pk.
        rows = [(form, form.instance.pk) for form in formset.forms]
        before = {
            m.pk: m
            for m in Membership.objects.filter(pk__in=[pk for _, pk in rows if pk]).select_related(
                "user", "organization"
            )
        }
        deleted = {form.instance.pk for form in formset.deleted_forms if form.instance.pk}
        formset.save()
        for form, pk in rows:
            obj = form.instance
            old = before.get(pk) if pk else None
            gone = pk in deleted or obj.pk is None
            was_su = old is not None and old.role == su
            is_su = not gone and obj.role == su
            same = (
                old is not None
                and not gone
                and (old.user_id, old.organization_id) == (obj.user_id, obj.organization_id)
            )
            if was_su and not (is_su and same):
                assert old is not None  # was_su
                services.record_role_change(
                    user=old.user, organization=old.organization, granted=False, context=context
                )
                selectors.forget_roles(old.user)
            if is_su and not (was_su and same):
                services.record_role_change(
                    user=obj.user, organization=obj.organization, granted=True, context=context
                )
                selectors.forget_roles(obj.user)


# --- users ----------------------------------------------------------------------------------------


class SuperUserFilter(admin.SimpleListFilter):
    title = "Super User"
    parameter_name = "super_user"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        su = Membership.objects.filter(user=OuterRef("pk"), role=Membership.Role.SUPER_USER)
        if self.value() == "yes":
            return queryset.filter(Exists(su))
        if self.value() == "no":
            return queryset.exclude(Exists(su))
        return queryset


class UserCreationForm(forms.ModelForm):
    """Staff create a user without a password; the user sets one with "Forgot password"."""

    class Meta:
        model = User
        fields = ["email", "name", "is_active", "is_staff"]

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
        return user

    def _save_m2m(self) -> None:  # runs once the new user is saved, with or without commit
        super()._save_m2m()  # type: ignore[misc]
        services.record_staff_chosen_address(self.instance)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_active", "is_staff", "super_user_of", "last_login"]
    list_filter = ["is_staff", "is_active", SuperUserFilter, "is_superuser"]
    search_fields = ["email", "name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "name"]}),
        ("Status", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_form = UserCreationForm
    add_fieldsets = [(None, {"fields": ["email", "name", "is_active", "is_staff"]})]
    filter_horizontal = ["groups"]
    actions = ["grant_super_user", "revoke_super_user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("memberships__organization")

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:  # noqa: A002
        """Staff never set a user's password: whoever knows it could log in as a Super User
        who has not enrolled TOTP yet. Users choose their own ("Forgot password")."""
        raise PermissionDenied

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list:
        """A user's login address is theirs to change (allauth, verified); nobody changes their
        own status or groups (no making oneself a Django superuser)."""
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("email")
        if obj is not None and access.custody_refusal(request.user, users=[obj]):
            fields += ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]
        return fields

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list:
        return [MembershipInline] if obj is not None else []  # memberships once the user exists

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Users are deactivated, never deleted: a delete would take their Super User
        memberships with it unaudited and unannounced, and blank them out of the audit log."""
        return False

    @admin.display(description=_("Super User of"))
    def super_user_of(self, obj: User) -> str:
        return ", ".join(
            m.organization.name
            for m in obj.memberships.all()
            if m.role == Membership.Role.SUPER_USER
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_memberships_audited(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    @admin.action(description=_("Grant Super User… (choose the organization)"))
    def grant_super_user(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        users = list(queryset)
        applying = "apply" in request.POST
        form = OrganizationChoiceForm(request.POST if applying else None)
        chosen = form.cleaned_data.get("organization") if applying and form.is_valid() else None
        try:
            access.check_custody_change(request, users=users, organizations=[chosen])
            if applying and form.is_valid():
                with transaction.atomic():
                    organization = form.get_or_create_organization()
                    context = AuditContext.from_request(request, Channel.ADMIN)
                    for user in users:
                        services.grant_super_user(
                            user=user, organization=organization, context=context
                        )
        except CustodyRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        if applying and form.is_valid():
            self.message_user(
                request,
                ngettext(
                    "%(count)d user is now a Super User of %(organization)s.",
                    "%(count)d users are now Super Users of %(organization)s.",
                    len(users),
                )
                % {"count": len(users), "organization": organization},
                messages.SUCCESS,
            )
            return None
        return render(
            request,
            "accounts/admin/choose_organization.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Grant Super User"),
                "intro": _("These users become Super Users of the organization you choose:"),
                "objects": queryset,
                "form": form,
                "action": "grant_super_user",
                "opts": self.model._meta,
                "button": _("Grant Super User"),
            },
            status=400 if applying else 200,
        )

    @admin.action(description=_("Revoke Super User (all organizations)"))
    def revoke_super_user(self, request: HttpRequest, queryset: QuerySet) -> None:
        ended = 0
        context = AuditContext.from_request(request, Channel.ADMIN)
        try:
            with transaction.atomic():
                for user in queryset:
                    ended += services.revoke_super_user(user=user, context=context)
        except CustodyRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext("%(count)d Super User role ended.", "%(count)d Super User roles ended.", ended)
            % {"count": ended},
            messages.SUCCESS,
        )


# --- email addresses: shown, never added, changed or verified by staff ----------------------------


class ReadOnlyEmailAddressAdmin(allauth_admin.EmailAddressAdmin):
    """An address added or marked verified here would receive that user's password reset link,
    and with it their account: staff see the addresses, users manage them (allauth, verified)."""

    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


if admin.site.is_registered(EmailAddress):
    admin.site.unregister(EmailAddress)
admin.site.register(EmailAddress, ReadOnlyEmailAddressAdmin)


# --- organizations ------------------------------------------------------------------------------


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "customer_number", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "customer_number"]
    inlines = [MembershipInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_memberships_audited(request, formset)
        else:
            super().save_formset(request, form, formset, change)


# --- access requests ------------------------------------------------------------------------------


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


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "customer_name",
        "customer_number",
        "is_distributor",
        "status",
        "created_at",
        "decided_by",
    ]
    list_filter = ["status", "is_distributor"]
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
                return None
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
            return None
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
