"""Writes of the accounts app: registration, Super User access requests, grants.

Registration is email-first and creates no row until it completes: the activation link carries
the address in a signed, timestamped token (Django signing), and completing it creates the user,
which is what makes the link single use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from accounts import emails
from accounts.access import enforce_custody
from accounts.models import AccessRequest, Membership, Organization, User
from accounts.selectors import forget_roles, super_user_emails, user_for_verified_email
from audit import services as audit
from audit.context import AuditContext
from audit.models import Action
from kamkeys.links import public_page_url, public_url

ACTIVATION_SALT = "kamkeys.accounts.activation.v1"


class RegistrationError(Exception):
    """Base of the registration outcomes a page explains to the visitor."""


class ActivationLinkInvalid(RegistrationError):
    """The link was altered or is not one of ours."""


class ActivationLinkExpired(RegistrationError):
    """The link is genuine but older than ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS."""


class AlreadyRegistered(RegistrationError):
    """The address has an account: the link was used already (or the address registered since)."""


class AccessRequestError(Exception):
    """A request that cannot be made or decided in its current state; the text says why."""


# --- helpers ----------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def email_has_account(email: str) -> bool:
    """Whether the address is the verified login of an account (an unverified address that
    someone attached to their account does not count: see user_for_verified_email)."""
    return user_for_verified_email(normalize_email(email)) is not None


# --- registration -----------------------------------------------------------------------------


def activation_max_age() -> timedelta:
    return timedelta(days=settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS)


def make_activation_token(email: str) -> str:
    """A tamper-proof, timestamped token naming the address; no database row behind it."""
    return signing.dumps({"email": normalize_email(email)}, salt=ACTIVATION_SALT)


def read_activation_token(token: str) -> str:
    """The address a token was made for, or ActivationLinkExpired / ActivationLinkInvalid."""
    try:
        data = signing.loads(token, salt=ACTIVATION_SALT, max_age=activation_max_age())
    except signing.SignatureExpired as exc:
        raise ActivationLinkExpired from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ActivationLinkInvalid from exc
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, str) or not email:
        raise ActivationLinkInvalid
    return email


def start_registration(email: str, *, context: AuditContext) -> None:
    """Email an activation link, or "you already have an account" to a known address.

    The caller answers the same either way, so nobody learns whether an address is registered.
    """
    email = normalize_email(email)
    with transaction.atomic():
        if email_has_account(email):
            emails.already_registered(
                email,
                login_url=public_url(reverse("account_login"), origin=context.origin),
                reset_url=public_url(reverse("account_reset_password"), origin=context.origin),
            )
            return
        token = make_activation_token(email)
        emails.activation(
            email,
            activation_url=public_url(
                reverse("accounts:activate", args=[token]), origin=context.origin
            ),
            expire_days=settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS,
        )


@dataclass(frozen=True)
class NewAccount:
    email: str
    name: str
    password: str


def complete_registration(account: NewAccount) -> User:
    """Create the active user with a verified primary address; AlreadyRegistered if it exists.

    The password has been validated by the form already (AUTH_PASSWORD_VALIDATORS).
    """
    email = normalize_email(account.email)
    if email_has_account(email):
        raise AlreadyRegistered
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, account.password, name=account.name.strip())
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    except IntegrityError as exc:  # a double submit or a parallel registration won the race
        raise AlreadyRegistered from exc
    return user


def record_staff_chosen_address(user: User) -> None:
    """Staff created this account for its address: record the address as the verified login,
    so "Forgot password" (how such an account sets its first password) finds it. Self-service
    ways in prove the address with a link or code instead (user_for_verified_email)."""
    EmailAddress.objects.update_or_create(
        user=user, email=normalize_email(user.email), defaults={"verified": True, "primary": True}
    )


# --- Super User: grants and revokes -------------------------------------------------------------


def grant_super_user(
    *,
    user: User,
    organization: Organization,
    context: AuditContext,
    notify: bool = True,
) -> Membership:
    """Make the user a Super User of the organization (creating the membership).

    Refused (CustodyRefused) when the actor may not make this grant; audited and emailed by
    record_role_change. ``notify`` False leaves out the user's own email (the access request
    approval sends its own).
    """
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            user=user,
            organization=organization,
            defaults={"role": Membership.Role.SUPER_USER},
        )
        if not created and membership.role == Membership.Role.SUPER_USER:
            return membership
        if not created:
            membership.role = Membership.Role.SUPER_USER
            membership.save(update_fields=["role"])
        forget_roles(user)
        record_role_change(
            user=user, organization=organization, granted=True, context=context, notify_user=notify
        )
    return membership


def revoke_super_user(
    *,
    user: User,
    organization: Organization | None = None,
    context: AuditContext,
    notify: bool = True,
) -> int:
    """End the user's Super User role (in one organization, or all); they stay a member.

    Returns how many roles ended. Each is audited and emailed by record_role_change.
    """
    with transaction.atomic():
        memberships = Membership.objects.select_for_update().filter(
            user=user, role=Membership.Role.SUPER_USER
        )
        if organization is not None:
            memberships = memberships.filter(organization=organization)
        ended = list(memberships.select_related("organization"))
        for membership in ended:
            membership.role = Membership.Role.MEMBER
            membership.save(update_fields=["role"])
        forget_roles(user)
        for membership in ended:
            record_role_change(
                user=user,
                organization=membership.organization,
                granted=False,
                context=context,
                notify_user=notify,
            )
    return len(ended)


def record_role_change(
    *,
    user: User,
    organization: Organization,
    granted: bool,
    context: AuditContext,
    notify_user: bool = True,
) -> None:
    """What every Super User grant and revoke does once the membership row has changed, by
    whichever route (the services above, the admin's membership inlines).

    Refused when the actor may not make it (accounts.access.custody_refusal; raised inside the
    caller's transaction, so the change rolls back), audited, emailed to the user, and emailed
    to the organization's other Super Users and to staff. Call it inside the change's
    transaction.
    """
    by = context.actor
    if granted:
        enforce_custody(by, users=[user], organizations=[organization])
    else:
        enforce_custody(by, users=[user])
    audit.record(
        Action.GRANT_SUPER_USER if granted else Action.REVOKE_SUPER_USER,
        context=context,
        object_type="user",
        object_ids=[user.pk],
        count=1,
        detail={"organization_id": organization.pk, "organization": organization.name[:200]},
    )
    if notify_user:
        if granted:
            emails.super_user_granted(
                user.email,
                organization=organization.name,
                devices_url=public_page_url("devices:list", origin=context.origin),
            )
        else:
            emails.super_user_revoked(user.email, organization=organization.name)
    admin_url = public_page_url("admin:accounts_user_change", user.pk, origin=context.origin)
    for address, on_staff_list in custody_recipients([organization], exclude=user):
        emails.super_user_change_notice(
            address,
            granted=granted,
            user=user.email,
            organization=organization.name,
            actor=actor_label(by),
            admin_url=admin_url if on_staff_list else "",
        )


@dataclass(frozen=True)
class StaffChange:
    """What changed of a user's access to the administration: the new staff and superuser
    status (None: unchanged) and the groups added and removed, by name."""

    staff: bool | None = None
    superuser: bool | None = None
    groups_added: tuple[str, ...] = ()
    groups_removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return (
            self.staff is not None
            or self.superuser is not None
            or bool(self.groups_added or self.groups_removed)
        )


def record_staff_change(*, user: User, change: StaffChange, context: AuditContext) -> None:
    """What every change of a user's staff or superuser status or groups does once it is saved
    (the admin's user pages): refused when it is the actor's own account (custody_refusal),
    audited, and emailed to the staff list and to the account. Staff grant Super User and
    transfer devices, so making someone staff is announced as a Super User grant is. Call it
    inside the change's transaction."""
    if not change:
        return
    by = context.actor
    enforce_custody(by, users=[user])
    detail: dict[str, Any] = {}
    if change.staff is not None:
        detail["is_staff"] = [not change.staff, change.staff]
    if change.superuser is not None:
        detail["is_superuser"] = [not change.superuser, change.superuser]
    if change.groups_added:
        detail["groups_added"] = list(change.groups_added)
    if change.groups_removed:
        detail["groups_removed"] = list(change.groups_removed)
    audit.record(
        Action.STAFF_CHANGE,
        context=context,
        object_type="user",
        object_ids=[user.pk],
        count=1,
        detail=detail,
    )
    admin_url = public_page_url("admin:accounts_user_change", user.pk, origin=context.origin)
    recipients = {address.lower(): address for address in staff_recipients()}
    recipients.setdefault(user.email.lower(), user.email)
    for address in recipients.values():
        emails.staff_change_notice(
            address,
            user=user.email,
            staff=change.staff,
            superuser=change.superuser,
            groups_added=list(change.groups_added),
            groups_removed=list(change.groups_removed),
            actor=actor_label(by),
            admin_url=admin_url if address.lower() != user.email.lower() or user.is_staff else "",
        )


def actor_label(by: Any) -> str:
    """Who made a change, as the notices name them."""
    if by is None or not getattr(by, "is_authenticated", False):
        return "the system (a management command)"
    return f"{by.email} (staff)" if getattr(by, "is_staff", False) else by.email


def custody_recipients(organizations: list[Any], *, exclude: Any = None) -> list[tuple[str, bool]]:
    """Who hears of a change of custody, as (address, is on the staff list): the organizations'
    Super Users and the staff list, each address once, without ``exclude`` (the user the change
    is about, who gets their own email)."""
    skip = exclude.email.lower() if exclude is not None else None
    found: dict[str, tuple[str, bool]] = {}
    for address in staff_recipients():
        found.setdefault(address.lower(), (address, True))
    for address in super_user_emails(organizations, exclude=exclude):
        found.setdefault(address.lower(), (address, False))
    return [pair for key, pair in found.items() if key != skip]


def notify_device_transfer(
    *,
    serials: list[str],
    count: int,
    from_organization: Organization | None,
    to_organization: Organization | None,
    by: Any = None,
    admin_url: str = "",
) -> None:
    """Email the Super Users of the old and the new owner, and staff, that devices moved
    (``admin_url``, for staff only, opens the change in the admin).

    Call it inside the transfer's transaction.
    """
    for address, on_staff_list in custody_recipients([from_organization, to_organization]):
        emails.device_transfer_notice(
            address,
            serials=serials[:20],
            count=count,
            from_organization=from_organization.name if from_organization else "no owner",
            to_organization=to_organization.name if to_organization else "no owner",
            actor=actor_label(by),
            admin_url=admin_url if on_staff_list else "",
        )


# --- Super User access requests ---------------------------------------------------------------


def staff_recipients() -> list[str]:
    """KAMKEYS_STAFF_EMAILS plus every active staff user, each address once."""
    seen: dict[str, str] = {}
    addresses = list(settings.KAMKEYS_STAFF_EMAILS) + list(
        User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
    )
    for address in addresses:
        address = (address or "").strip()
        if address and address.lower() not in seen:
            seen[address.lower()] = address
    return list(seen.values())


def request_access(
    *,
    customer_name: str = "",
    customer_number: str = "",
    is_distributor: bool = False,
    message: str = "",
    context: AuditContext,
) -> AccessRequest:
    """Record the acting user's request and tell staff. One pending request per user."""
    user = context.actor
    customer_name = customer_name.strip()
    customer_number = customer_number.strip()
    if not customer_name and not customer_number:
        raise AccessRequestError(gettext("Give your customer name, your customer number, or both."))
    try:
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=user.pk).first()
            if AccessRequest.objects.filter(
                user=user, status=AccessRequest.Status.PENDING
            ).exists():
                raise AccessRequestError(
                    gettext(
                        "You already have a request waiting for staff; you will get an email "
                        "when it is decided."
                    )
                )
            access_request = AccessRequest.objects.create(
                user=user,
                customer_name=customer_name,
                customer_number=customer_number,
                is_distributor=is_distributor,
                message=message.strip(),
            )
            admin_url = public_page_url(
                "admin:accounts_accessrequest_change", access_request.pk, origin=context.origin
            )
            for address in staff_recipients():
                emails.access_request_to_staff(
                    address,
                    requester=user.email,
                    requester_name=user.name,
                    customer_name=customer_name,
                    customer_number=customer_number,
                    is_distributor=is_distributor,
                    message=access_request.message,
                    admin_url=admin_url,
                )
    except IntegrityError as exc:  # the one-pending-request constraint caught a double submit
        raise AccessRequestError(
            gettext(
                "You already have a request waiting for staff; you will get an email when it is "
                "decided."
            )
        ) from exc
    return access_request


def _lock_pending(access_request: AccessRequest) -> AccessRequest:
    locked = AccessRequest.objects.select_for_update().get(pk=access_request.pk)
    if locked.status != AccessRequest.Status.PENDING:
        raise AccessRequestError(
            gettext("The request by %(user)s was already %(status)s.")
            % {"user": locked.user, "status": locked.get_status_display().lower()}
        )
    return locked


def approve_access_request(
    *, access_request: AccessRequest, organization: Organization, context: AuditContext
) -> AccessRequest:
    """Grant Super User of the organization to the requester and tell them by email."""
    decided_by = context.actor
    with transaction.atomic():
        locked = _lock_pending(access_request)
        locked.status = AccessRequest.Status.APPROVED
        locked.organization = organization
        locked.decided_by = decided_by
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "organization", "decided_by", "decided_at"])
        grant_super_user(user=locked.user, organization=organization, context=context, notify=False)
        emails.access_request_approved(
            locked.user.email,
            organization=organization.name,
            devices_url=public_page_url("devices:list", origin=context.origin),
        )
    return locked


def reject_access_request(
    *, access_request: AccessRequest, reason: str, context: AuditContext
) -> AccessRequest:
    """Decline with a reason the requester reads in the email."""
    decided_by = context.actor
    reason = (reason or "").strip()
    if not reason:
        raise AccessRequestError(gettext("Give a reason: the requester reads it."))
    with transaction.atomic():
        locked = _lock_pending(access_request)
        locked.status = AccessRequest.Status.REJECTED
        locked.reason = reason
        locked.decided_by = decided_by
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "reason", "decided_by", "decided_at"])
        emails.access_request_rejected(
            locked.user.email,
            reason=reason,
            request_url=public_page_url("accounts:request_access", origin=context.origin),
        )
    return locked


def set_language(user: User, language: str) -> None:
    """Keep the language a user chose in the header; pages and emails to them use it."""
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language
