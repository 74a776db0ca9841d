"""Users in the admin: Super User filter, creation without a password, the grant and revoke
actions; users are deactivated, never deleted; email addresses are read-only. Staff and
superuser status and groups are custody too (staff grant Super User and transfer devices):
changing them needs a recent sign-in, only a superuser changes superuser status, groups and
permissions, and every change is audited and announced (accounts.services.record_staff_change)."""

from __future__ import annotations

from typing import Any, cast

from allauth.account import admin as allauth_admin
from allauth.account.models import EmailAddress
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import access, services
from accounts.access import CustodyRefused
from accounts.admin.memberships import MembershipInline, save_memberships_audited
from accounts.forms import OrganizationChoiceForm
from accounts.models import Membership, User
from audit.context import AuditContext, Channel


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


# The fields that make a user staff or give them permissions in the admin.
STAFF_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")
# Of those, what only a superuser may change (a help desk with "change user" made an
# accomplice a superuser, holding every permission it lacked itself).
SUPERUSER_ONLY_FIELDS = ("is_superuser", "groups", "user_permissions")


class StaffChangeCheckedMixin(forms.ModelForm):
    """A change of STAFF_FIELDS is checked like a Super User grant before anything is saved:
    a recent sign-in (else allauth asks for the password and replays the form), and never
    the acting staff member's own account."""

    request: HttpRequest | None = None  # set for each request by UserAdmin.get_form

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        changed = [name for name in STAFF_FIELDS if name in self.changed_data]
        if changed and self.request is not None:
            users = [self.instance] if self.instance.pk else []
            try:
                access.check_custody_change(self.request, users=users)
            except CustodyRefused as exc:
                self.add_error(None, str(exc))
        return cleaned


def staff_change_of(form: forms.ModelForm) -> services.StaffChange:
    """What a saved user form changed of STAFF_FIELDS (groups by name)."""
    changed = form.changed_data

    def flag(name: str) -> bool | None:
        return bool(form.cleaned_data.get(name)) if name in changed else None

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if "groups" in changed:
        before = {group.name for group in form.initial.get("groups") or []}
        after = {group.name for group in form.cleaned_data.get("groups") or []}
        added, removed = tuple(sorted(after - before)), tuple(sorted(before - after))
    return services.StaffChange(
        staff=flag("is_staff"),
        superuser=flag("is_superuser"),
        groups_added=added,
        groups_removed=removed,
    )


class CheckedUserChangeForm(StaffChangeCheckedMixin, UserChangeForm):
    pass


class UserCreationForm(StaffChangeCheckedMixin, forms.ModelForm):
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
    form = CheckedUserChangeForm
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
        if not request.user.is_superuser:
            fields += [name for name in SUPERUSER_ONLY_FIELDS if name not in fields]
        return fields

    def get_form(  # noqa: ANN201
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ):
        # A new subclass of the change or creation form for each call (Django's UserAdmin
        # picks the creation form when there is no user yet, and takes no ``change``).
        form = cast("type[StaffChangeCheckedMixin]", super().get_form(request, obj, **kwargs))
        form.request = request
        return form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Once the user and its groups are saved (in the admin's transaction): audit and
        announce a change of staff or superuser status or groups."""
        super().save_related(request, form, formsets, change)
        services.record_staff_change(
            user=form.instance,
            change=staff_change_of(form),
            context=AuditContext.from_request(request, Channel.ADMIN),
        )

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
