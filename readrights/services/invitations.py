"""Invitations: invite unknown customers, accept, resend, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from accounts.selectors import super_user_organization_ids, user_for_verified_email
from audit.context import AuditContext
from audit.models import Action
from audit.services import record
from devices.models import Device
from kamkeys.links import public_page_url
from readrights import emails, tokens
from readrights.models import Invitation
from readrights.serials import invitation_preview
from readrights.services.bulk import (
    INSERT_INVITATION_DEVICES,
    INSERT_RIGHTS_FROM_INVITATION,
    _dt,
    _ids_sql,
    _sql,
)
from readrights.services.common import InvitationInvalid, NotManageable, ReadRightsError

# The shortest time between two emails of one invitation by Resend.
RESEND_AFTER = timedelta(minutes=1)


def _link(token: str, origin: str) -> str:
    return public_page_url("readrights:invitation", token, origin=origin)


def _send_invitation(invitation: Invitation, *, message: str, origin: str) -> None:
    """Give the invitation a fresh link (older ones stop working) and email it."""
    now = timezone.now()
    token, token_hash = tokens.new_token(invitation.pk)
    invitation.token_hash = token_hash
    invitation.expires_at = now + timedelta(days=settings.KAMKEYS_INVITATION_DAYS)
    invitation.last_sent_at = now
    invitation.send_count = (invitation.send_count or 0) + 1
    invitation.save(update_fields=["token_hash", "expires_at", "last_sent_at", "send_count"])
    count = invitation.devices.count()
    emails.invitation(
        invitation.email,
        invited_by=invitation.invited_by,
        organization=invitation.organization.name,
        count=count,
        accept_url=_link(token, origin),
        link_expires_at=invitation.expires_at,
        rights_expire_at=invitation.rights_expire_at,
        message=message,
        serials=invitation_preview(invitation),
        origin=origin,
    )


def _invite(
    *,
    email: str,
    owner_ids: list[int],
    devices: QuerySet[Device],
    expires_at: datetime | None,
    message: str,
    context: AuditContext,
) -> tuple[int, bool]:
    """Create (or extend) the pending invitation of each owning organization and send a fresh
    link when it is new, gained devices or its link expired; an assignment that adds nothing
    mails nothing and the link already sent keeps working (a repeated sync, a double click).
    Returns the number of devices the invitation(s) now cover, and whether a link was sent."""
    total, sent = 0, False
    for org_id in owner_ids:
        invitation, created = _pending_invitation(
            email=email,
            org_id=org_id,
            invited_by=context.actor,
            expires_at=expires_at,
            message=message,
        )
        org_devices = devices.filter(owner_id=org_id)
        sub_sql, sub_params = _ids_sql(org_devices)
        with connection.cursor() as cursor:
            cursor.execute(
                _sql(INSERT_INVITATION_DEVICES).replace("{devices}", sub_sql),
                (invitation.pk, *sub_params, invitation.pk),
            )
            added = max(cursor.rowcount, 0)
        emailed = created or added > 0 or invitation.expires_at <= timezone.now()
        if emailed:
            _send_invitation(
                invitation, message=message or invitation.message, origin=context.origin
            )
            sent = True
        ids = list(org_devices.order_by().values_list("pk", flat=True))
        total += invitation.devices.count()
        record(
            Action.INVITE,
            context=context,
            object_type="device",
            object_ids=ids,
            count=len(ids),
            detail={"invitation": invitation.pk, "email": email, "new": created, "sent": emailed},
        )
    return total, sent


def _pending_invitation(
    *,
    email: str,
    org_id: int,
    invited_by: Any,
    expires_at: datetime | None,
    message: str,
) -> tuple[Invitation, bool]:
    """The organization's pending invitation to this address, locked, with the new terms; a
    new one when there is none. Returns (invitation, created)."""
    invitation = (
        Invitation.objects.select_for_update()
        .filter(
            email=email,
            organization_id=org_id,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .first()
    )
    if invitation is None:
        invitation = Invitation.objects.create(
            email=email,
            invited_by=invited_by,
            organization_id=org_id,
            message=message,
            rights_expire_at=expires_at,
            expires_at=timezone.now(),
        )
        return invitation, True
    invitation.invited_by = invited_by
    invitation.rights_expire_at = expires_at
    if message:
        invitation.message = message
    invitation.save(update_fields=["invited_by", "rights_expire_at", "message"])
    return invitation, False


def invitation_for_token(token: str, *, lock: bool = False) -> Invitation:
    """The pending invitation behind a link, or InvitationInvalid saying why it does not work."""
    try:
        invitation_id, presented = tokens.read_token(token)
    except tokens.BadToken:
        raise InvitationInvalid("invalid") from None
    queryset = Invitation.objects.select_related("organization", "invited_by")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    invitation = queryset.filter(pk=invitation_id).first()
    if invitation is None or not tokens.hashes_match(invitation.token_hash, presented):
        raise InvitationInvalid("invalid")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("used", email=invitation.email)
    if invitation.revoked_at is not None:
        raise InvitationInvalid("cancelled")
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid("expired")
    return invitation


def _rights_from_invitation(invitation: Invitation, user: User, now: datetime) -> int:
    """Turn an invitation's devices into rights, for the devices its organization still owns."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(INSERT_RIGHTS_FROM_INVITATION),
            (
                user.pk,
                invitation.invited_by_id,
                _dt(now),
                _dt(invitation.rights_expire_at),
                invitation.pk,
                invitation.organization_id,
                user.pk,
            ),
        )
        return max(cursor.rowcount, 0)


@dataclass
class Acceptance:
    user: User
    created: bool
    device_count: int


def account_for_invitation(email: str) -> User | None:
    """The account an invitation to this address goes into: the one whose verified login it is,
    or None (accepting creates one). An account holding the address as a login nobody verified
    gets nothing: InvitationInvalid("unconfirmed") — its owner logs in once (allauth emails a
    code to the address) and opens the link again."""
    user = user_for_verified_email(email)
    if user is None and User.objects.filter(email__iexact=email).exists():
        raise InvitationInvalid("unconfirmed")
    return user


def accept_invitation(
    *, token: str, name: str = "", password: str = "", context: AuditContext
) -> Acceptance:
    """Accept an invitation: the link proves the address, so the account is created active with
    a verified email, and every pending invitation to that address becomes read rights.
    The account whose verified login the address is keeps its password; it just gains the
    rights (see account_for_invitation)."""
    name = (name or "").strip()[:150]
    with transaction.atomic():
        invitation = invitation_for_token(token, lock=True)
        email = invitation.email
        user = account_for_invitation(email)
        created = user is None
        if user is None:
            validate_password(password, user=User(email=email, name=name))
            user = User.objects.create_user(email, password, name=name)
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        now = timezone.now()
        pending = (
            Invitation.objects.select_for_update()
            .filter(email=email, accepted_at__isnull=True, revoked_at__isnull=True)
            .filter(expires_at__gt=now)
        )
        total = 0
        for each in pending:
            granted = _rights_from_invitation(each, user, now)
            total += granted
            each.accepted_at = now
            each.accepted_by = user
            each.save(update_fields=["accepted_at", "accepted_by"])
            record(
                Action.ACCEPT,
                context=context.acting_as(user),
                object_type="invitation",
                object_ids=[each.pk],
                count=granted,
                detail={"organization": each.organization_id, "new_account": created},
            )
    return Acceptance(user=user, created=created, device_count=total)


def resend_invitation(invitation: Invitation, *, context: AuditContext) -> Invitation:
    """Send a fresh link (the old one stops working) and restart the link's lifetime."""
    sent_by = context.actor
    if invitation.organization_id not in super_user_organization_ids(sent_by):
        raise NotManageable("Not your invitation.")
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise ReadRightsError(
                gettext("This invitation was already accepted; nothing to re-send.")
            )
        if invitation.revoked_at is not None:
            raise ReadRightsError(
                gettext("This invitation was cancelled. Assign the devices again.")
            )
        if invitation.last_sent_at and timezone.now() - invitation.last_sent_at < RESEND_AFTER:
            # A double click sent two emails and killed the first one's link; and nothing
            # limited how often one address could be mailed.
            raise ReadRightsError(
                gettext(
                    "The invitation to %(email)s was sent less than a minute ago, so it was not "
                    "sent again: the link in that email works. Try again in a minute if it "
                    "does not arrive."
                )
                % {"email": invitation.email}
            )
        _send_invitation(invitation, message=invitation.message, origin=context.origin)
        record(
            Action.INVITE,
            context=context,
            object_type="invitation",
            object_ids=[invitation.pk],
            count=invitation.devices.count(),
            detail={"invitation": invitation.pk, "email": invitation.email, "resend": True},
        )
    return invitation


def cancel_invitation(invitation: Invitation, *, context: AuditContext) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    cancelled_by = context.actor
    if invitation.organization_id not in super_user_organization_ids(cancelled_by):
        raise NotManageable("Not your invitation.")
    with transaction.atomic():
        changed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not changed:
            raise ReadRightsError(gettext("This invitation is no longer pending."))
        record(
            Action.REVOKE,
            context=context,
            object_type="invitation",
            object_ids=[invitation.pk],
            count=invitation.devices.count(),
            detail={"email": invitation.email},
        )
