"""Every email the accounts app sends, one function each, all through the outbox.

Call these inside the transaction of the change that causes them: the row is written with it and
sent by Celery once it commits. Context values are plain strings and numbers.
"""

from __future__ import annotations

from kamkeys import outbox
from kamkeys.models import OutboundEmail


def allauth_email(
    to: str, *, subject: str, text: str, html: str, language: str | None = None
) -> OutboundEmail:
    """An email allauth composed (password reset, MFA notices, …), already rendered."""
    return outbox.enqueue(
        to,
        "accounts_allauth",
        {"subject": subject, "body_text": text, "body_html": html},
        language=language,
    )


def activation(to: str, *, activation_url: str, expire_days: int) -> OutboundEmail:
    """The link that opens "Complete registration" for a new address."""
    return outbox.enqueue(
        to,
        "accounts_activation",
        {"email": to, "activation_url": activation_url, "expire_days": expire_days},
    )


def already_registered(to: str, *, login_url: str, reset_url: str) -> OutboundEmail:
    """Someone registered an address that already has an account: tell its owner, nobody else."""
    return outbox.enqueue(
        to,
        "accounts_already_registered",
        {"email": to, "login_url": login_url, "reset_url": reset_url},
    )


def access_request_to_staff(
    to: str,
    *,
    requester: str,
    requester_name: str,
    customer_name: str,
    customer_number: str,
    is_distributor: bool,
    message: str,
    admin_url: str,
) -> OutboundEmail:
    """Staff are told a Super User access request waits for them in the admin."""
    return outbox.enqueue(
        to,
        "accounts_access_request_staff",
        {
            "requester": requester,
            "requester_name": requester_name,
            "customer_name": customer_name,
            "customer_number": customer_number,
            "is_distributor": is_distributor,
            "message": message,
            "admin_url": admin_url,
        },
    )


def access_request_approved(to: str, *, organization: str, devices_url: str) -> OutboundEmail:
    return outbox.enqueue(
        to,
        "accounts_access_approved",
        {"organization": organization, "devices_url": devices_url},
    )


def access_request_rejected(to: str, *, reason: str, request_url: str) -> OutboundEmail:
    return outbox.enqueue(
        to, "accounts_access_rejected", {"reason": reason, "request_url": request_url}
    )


def super_user_granted(to: str, *, organization: str, devices_url: str) -> OutboundEmail:
    """Staff made the user a Super User directly (not through a request)."""
    return outbox.enqueue(
        to,
        "accounts_super_user_granted",
        {"organization": organization, "devices_url": devices_url},
    )


def super_user_revoked(to: str, *, organization: str) -> OutboundEmail:
    return outbox.enqueue(to, "accounts_super_user_revoked", {"organization": organization})


def super_user_change_notice(
    to: str,
    *,
    granted: bool,
    user: str,
    organization: str,
    actor: str,
    admin_url: str = "",
) -> OutboundEmail:
    """Tell an organization's other Super Users and staff that someone became (or stopped being)
    a Super User there, and who did it: a stolen staff login cannot hand out keys unseen."""
    return outbox.enqueue(
        to,
        "accounts_super_user_change_notice",
        {
            "granted": granted,
            "user": user,
            "organization": organization,
            "actor": actor,
            "admin_url": admin_url,
        },
    )


def staff_change_notice(
    to: str,
    *,
    user: str,
    staff: bool | None,
    superuser: bool | None,
    groups_added: list[str],
    groups_removed: list[str],
    actor: str,
    admin_url: str = "",
) -> OutboundEmail:
    """Tell the staff list and the account that someone's staff or superuser status or groups
    changed, and who did it: staff can hand out custody of every key, so making someone staff
    is announced as a Super User grant is. ``staff``/``superuser``: the new value, or None when
    it did not change."""
    return outbox.enqueue(
        to,
        "accounts_staff_change_notice",
        {
            "user": user,
            "staff": staff,
            "superuser": superuser,
            "groups_added": ", ".join(groups_added),
            "groups_removed": ", ".join(groups_removed),
            "actor": actor,
            "admin_url": admin_url,
        },
    )


def device_transfer_notice(
    to: str,
    *,
    serials: list[str],
    count: int,
    from_organization: str,
    to_organization: str,
    actor: str,
    admin_url: str = "",
) -> OutboundEmail:
    """Tell the Super Users of the old and the new owner, and staff, that devices changed owner."""
    return outbox.enqueue(
        to,
        "accounts_device_transfer_notice",
        {
            "serials": serials,
            "count": count,
            "from_organization": from_organization,
            "to_organization": to_organization,
            "actor": actor,
            "admin_url": admin_url,
        },
    )
