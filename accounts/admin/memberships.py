"""Membership inlines on user and organization pages: every Super User change in them goes
through accounts.services (custody rule, audit, emails)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from accounts import access, selectors, services
from accounts.access import CustodyRefused
from accounts.models import Membership, User
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
