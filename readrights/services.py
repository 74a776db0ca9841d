"""Writes about read rights: assign, invite, accept, revoke, resend, cancel.

Every change runs in one transaction with its audit event and its email (the outbox row), so a
failure leaves nothing half-written. Device sets arrive as querysets and are inserted with one
``INSERT … SELECT`` each, so 100,000 devices cost one statement, not 100,000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Organization, User
from accounts.selectors import super_user_organization_ids
from devices.models import Device
from keyvault.audit import record
from readrights import emails, tokens
from readrights.models import Invitation, ReadRight


class ReadRightsError(Exception):
    """A request that cannot be carried out; the text is safe to show to the user."""


class NotManageable(ReadRightsError):
    """Some devices are not the user's to share (foreign, deleted, or the user is no Super User).
    Views answer 404/403 without saying which."""


class InvitationInvalid(ReadRightsError):
    """An invitation link that does not work; ``reason`` is invalid, used, expired or cancelled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- input rules ------------------------------------------------------------------------------


def clean_emails(raw: str | Iterable[str], *, own_email: str = "") -> list[str]:
    """Split, normalise and check customer email addresses; raise ValidationError listing every
    problem at once. Separators: commas, semicolons, spaces and new lines."""
    if isinstance(raw, str):
        parts = raw.replace(",", " ").replace(";", " ").split()
    else:
        parts = [p for item in raw for p in str(item).replace(",", " ").replace(";", " ").split()]
    limit = settings.KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT
    if not parts:
        raise ValidationError("Enter at least one customer email address.", code="required")
    if len(parts) > limit:
        raise ValidationError(
            f"At most {limit} email addresses at once; you entered {len(parts)}. "
            "Split them into several assignments.",
            code="too_many",
        )
    errors: list[str] = []
    cleaned: list[str] = []
    for part in parts:
        email = part.strip().strip("<>").lower()
        try:
            if len(email) > 254:
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            errors.append(f"“{part[:80]}” is not a valid email address.")
            continue
        if own_email and email == own_email.strip().lower():
            errors.append("You cannot assign read rights to your own email address.")
            continue
        if email not in cleaned:
            cleaned.append(email)
    if errors:
        raise ValidationError(errors, code="invalid")
    return cleaned


def expiry_from_date(value: Any) -> datetime | None:
    """Rights given "until 31 December" work through the whole of that day (server time)."""
    if value is None:
        return None
    end = datetime.combine(value, datetime.max.time())
    return timezone.make_aware(end, timezone.get_current_timezone())


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ReadRightsError("The expiry date is in the past. Choose today or a later date.")


# --- helpers ----------------------------------------------------------------------------------

# Bulk statements: table names come from model metadata, {devices} is an ORM-compiled subquery
# of device ids, and every value is a query parameter.
INSERT_RIGHTS = (
    "INSERT INTO {rr} (device_id, grantee_id, granted_by_id, granted_at, expires_at) "
    "SELECT d.id, %s, %s, %s, %s FROM {dev} d WHERE d.id IN ({devices}) "
    "AND NOT EXISTS (SELECT 1 FROM {rr} r WHERE r.device_id = d.id "
    "AND r.grantee_id = %s AND r.revoked_at IS NULL)"
)
INSERT_INVITATION_DEVICES = (
    "INSERT INTO {inv_dev} (invitation_id, device_id) "
    "SELECT %s, d.id FROM {dev} d WHERE d.id IN ({devices}) "
    "AND NOT EXISTS (SELECT 1 FROM {inv_dev} t WHERE t.invitation_id = %s AND t.device_id = d.id)"
)
INSERT_RIGHTS_FROM_INVITATION = (
    "INSERT INTO {rr} (device_id, grantee_id, granted_by_id, granted_at, expires_at) "
    "SELECT d.id, %s, %s, %s, %s FROM {inv_dev} t JOIN {dev} d ON d.id = t.device_id "
    "WHERE t.invitation_id = %s AND d.owner_id = %s "
    "AND NOT EXISTS (SELECT 1 FROM {rr} r WHERE r.device_id = d.id "
    "AND r.grantee_id = %s AND r.revoked_at IS NULL)"
)

# One statement ends the rights and says which of them were still working (for the email).
REVOKE_RIGHTS = (
    "UPDATE {rr} SET revoked_at = %s, revoked_by_id = %s FROM {dev} d "
    "WHERE d.id = {rr}.device_id AND {rr}.revoked_at IS NULL "
    "AND d.owner_id IN ({orgs}) AND {rr}.grantee_id = %s{scope} "
    "RETURNING {rr}.device_id, {rr}.expires_at"
)


def _still_working(expires_at: Any, now: datetime) -> bool:
    """Whether a right (as read back from SQL) had not yet expired."""
    if expires_at is None:
        return True
    if isinstance(expires_at, str):  # SQLite hands back text or naive UTC datetimes
        expires_at = parse_datetime(expires_at)
    if expires_at is None:
        return True
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    return expires_at > now


def _sql(template: str) -> str:
    names = {
        "{rr}": ReadRight._meta.db_table,
        "{dev}": Device._meta.db_table,
        "{inv_dev}": Invitation.devices.through._meta.db_table,
    }
    for placeholder, table in names.items():
        template = template.replace(placeholder, connection.ops.quote_name(table))
    return template


def _dt(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _ids_sql(devices: QuerySet[Device]) -> tuple[str, tuple[Any, ...]]:
    sql, params = devices.order_by().values("pk").query.sql_with_params()
    return sql, tuple(params)


def _manageable_checked(user: Any, devices: QuerySet[Device]) -> tuple[list[int], list[int]]:
    """The device ids, all of which must be owned by an organization the user is a Super User
    of. Returns (device ids, owner organization ids); raises NotManageable otherwise."""
    org_ids = super_user_organization_ids(user)
    if not org_ids:
        raise NotManageable("Only Super Users of the owning organization may change read rights.")
    rows = list(devices.order_by().values_list("pk", "owner_id"))
    if not rows:
        raise ReadRightsError("No devices selected. Select devices in My devices first.")
    allowed = set(org_ids)
    if any(owner not in allowed for _, owner in rows):
        raise NotManageable("Some of these devices are not yours to share.")
    return [pk for pk, _ in rows], sorted({owner for _, owner in rows})


def _insert_rights(
    grantee_id: int,
    granted_by_id: int | None,
    devices_sql: str,
    params: tuple[Any, ...],
    expires_at: datetime | None,
    now: datetime,
) -> int:
    """One INSERT … SELECT of rights for every device in the subquery not already held."""
    sql = _sql(INSERT_RIGHTS).replace("{devices}", devices_sql)
    with connection.cursor() as cursor:
        cursor.execute(
            sql, (grantee_id, granted_by_id, _dt(now), _dt(expires_at), *params, grantee_id)
        )
        return max(cursor.rowcount, 0)


def _close_lapsed(grantee_id: int, devices: QuerySet[Device], now: datetime) -> None:
    """Expired rights end where they expired, so a new right for the same device can start."""
    ReadRight.objects.filter(
        grantee_id=grantee_id,
        revoked_at__isnull=True,
        expires_at__lte=now,
        device_id__in=devices.order_by().values("pk"),
    ).update(revoked_at=F("expires_at"))


def _org_name(org_ids: list[int]) -> str:
    return ", ".join(Organization.objects.filter(pk__in=org_ids).values_list("name", flat=True))


def _link(token: str) -> str:
    return emails.site_url("readrights:invitation", token)


def _send_invitation(invitation: Invitation, *, message: str) -> None:
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
        accept_url=_link(token),
        link_expires_at=invitation.expires_at,
        rights_expire_at=invitation.rights_expire_at,
        message=message,
    )


# --- assign -----------------------------------------------------------------------------------


@dataclass
class AssignResult:
    """What an assignment did, for the done page."""

    device_count: int = 0
    granted: dict[str, int] = field(default_factory=dict)  # existing customer → new rights
    already: dict[str, int] = field(default_factory=dict)  # existing customer → already held
    invited: dict[str, int] = field(default_factory=dict)  # unknown email → devices in invitation

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_count": self.device_count,
            "granted": self.granted,
            "already": self.already,
            "invited": self.invited,
        }


def assign_read_rights(
    granted_by: Any,
    devices_qs: QuerySet[Device],
    emails_in: Iterable[str],
    expires_at: datetime | None = None,
    message: str = "",
    request: HttpRequest | None = None,
) -> AssignResult:
    """Give customers read access to devices. Known customers get rights at once and one
    notification each; unknown addresses get one invitation (per owning organization).
    Customers who already hold a right keep it, with the new expiry."""
    addresses = clean_emails(list(emails_in), own_email=getattr(granted_by, "email", ""))
    check_expiry(expires_at)
    message = (message or "").strip()
    if len(message) > 2000:
        raise ReadRightsError("The message may be at most 2,000 characters long.")
    device_ids, owner_ids = _manageable_checked(granted_by, devices_qs)
    # The writes repeat the ownership condition, so a device transferred meanwhile is skipped.
    devices_qs = devices_qs.filter(owner_id__in=owner_ids)
    devices = Device.objects.filter(pk__in=devices_qs.order_by().values("pk"))
    devices_sql, params = _ids_sql(devices_qs)
    result = AssignResult(device_count=len(device_ids))
    now = timezone.now()
    org_name = _org_name(owner_ids)

    with transaction.atomic():
        users = {u.email: u for u in User.objects.filter(email__in=addresses)}
        for email in addresses:
            user = users.get(email)
            if user is None:
                continue
            _close_lapsed(user.pk, devices, now)
            already = ReadRight.objects.filter(
                grantee=user, revoked_at__isnull=True, device_id__in=devices.values("pk")
            ).update(expires_at=expires_at)
            granted = _insert_rights(user.pk, granted_by.pk, devices_sql, params, expires_at, now)
            result.granted[email] = granted
            result.already[email] = already
            if granted:
                emails.rights_granted(
                    email,
                    granted_by=granted_by,
                    organization=org_name,
                    count=granted,
                    expires_at=expires_at,
                    message=message,
                )
            record(
                "assign",
                actor=granted_by,
                request=request,
                object_type="device",
                object_ids=device_ids,
                count=len(device_ids),
                detail={
                    "grantee": email,
                    "new_rights": granted,
                    "already_held": already,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        for email in addresses:
            if email in users:
                continue
            result.invited[email] = _invite(
                granted_by, email, owner_ids, devices, expires_at, message, request
            )
    return result


def _invite(
    invited_by: Any,
    email: str,
    owner_ids: list[int],
    devices: QuerySet[Device],
    expires_at: datetime | None,
    message: str,
    request: HttpRequest | None,
) -> int:
    """Create (or extend) the pending invitation of each owning organization and send a fresh
    link. Returns the number of devices the invitation(s) now cover."""
    total = 0
    for org_id in owner_ids:
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
        created = invitation is None
        if created:
            invitation = Invitation.objects.create(
                email=email,
                invited_by=invited_by,
                organization_id=org_id,
                message=message,
                rights_expire_at=expires_at,
                expires_at=timezone.now(),
            )
        else:
            invitation.invited_by = invited_by
            invitation.rights_expire_at = expires_at
            if message:
                invitation.message = message
            invitation.save(update_fields=["invited_by", "rights_expire_at", "message"])
        org_devices = devices.filter(owner_id=org_id)
        sub_sql, sub_params = _ids_sql(org_devices)
        with connection.cursor() as cursor:
            cursor.execute(
                _sql(INSERT_INVITATION_DEVICES).replace("{devices}", sub_sql),
                (invitation.pk, *sub_params, invitation.pk),
            )
        _send_invitation(invitation, message=message or invitation.message)
        ids = list(org_devices.order_by().values_list("pk", flat=True))
        total += invitation.devices.count()
        record(
            "invite",
            actor=invited_by,
            request=request,
            object_type="device",
            object_ids=ids,
            count=len(ids),
            detail={"invitation": invitation.pk, "email": email, "new": created},
        )
    return total


# --- invitations ------------------------------------------------------------------------------


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
        raise InvitationInvalid("used")
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


def accept_invitation(
    token: str, name: str = "", password: str = "", request: HttpRequest | None = None
) -> Acceptance:
    """Accept an invitation: the link proves the address, so the account is created active with
    a verified email, and every pending invitation to that address becomes read rights.
    An address that already has an account keeps its password; it just gains the rights."""
    name = (name or "").strip()[:150]
    with transaction.atomic():
        invitation = invitation_for_token(token, lock=True)
        email = invitation.email
        user = User.objects.filter(email__iexact=email).first()
        created = user is None
        if created:
            validate_password(password, user=User(email=email, name=name))
            user = User.objects.create_user(email, password, name=name)
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        else:
            EmailAddress.objects.filter(user=user, email__iexact=email).update(verified=True)
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
                "accept",
                actor=user,
                request=request,
                object_type="invitation",
                object_ids=[each.pk],
                count=granted,
                detail={"organization": each.organization_id, "new_account": created},
            )
    return Acceptance(user=user, created=created, device_count=total)


def resend_invitation(
    sent_by: Any, invitation: Invitation, request: HttpRequest | None = None
) -> Invitation:
    """Send a fresh link (the old one stops working) and restart the link's lifetime."""
    if invitation.organization_id not in super_user_organization_ids(sent_by):
        raise NotManageable("Not your invitation.")
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise ReadRightsError("This invitation was already accepted; nothing to re-send.")
        if invitation.revoked_at is not None:
            raise ReadRightsError("This invitation was cancelled. Assign the devices again.")
        _send_invitation(invitation, message=invitation.message)
        record(
            "invite",
            actor=sent_by,
            request=request,
            object_type="invitation",
            object_ids=[invitation.pk],
            count=invitation.devices.count(),
            detail={"invitation": invitation.pk, "email": invitation.email, "resend": True},
        )
    return invitation


def cancel_invitation(
    cancelled_by: Any, invitation: Invitation, request: HttpRequest | None = None
) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    if invitation.organization_id not in super_user_organization_ids(cancelled_by):
        raise NotManageable("Not your invitation.")
    with transaction.atomic():
        changed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not changed:
            raise ReadRightsError("This invitation is no longer pending.")
        record(
            "revoke",
            actor=cancelled_by,
            request=request,
            object_type="invitation",
            object_ids=[invitation.pk],
            count=invitation.devices.count(),
            detail={"email": invitation.email},
        )


# --- revoke -----------------------------------------------------------------------------------


def revoke_read_rights(
    revoked_by: Any,
    grantee: User,
    devices_qs: QuerySet[Device] | None = None,
    request: HttpRequest | None = None,
) -> int:
    """End a customer's rights on the given devices (or on all of the revoker's organizations'
    devices). Access ends at once; the customer is told by email. Returns how many ended."""
    org_ids = super_user_organization_ids(revoked_by)
    if not org_ids:
        raise NotManageable("Only Super Users of the owning organization may revoke read rights.")
    with transaction.atomic():
        now = timezone.now()
        sql = _sql(REVOKE_RIGHTS).replace("{orgs}", ", ".join(["%s"] * len(org_ids)))
        params: list[Any] = [_dt(now), revoked_by.pk, *org_ids, grantee.pk]
        if devices_qs is None:
            sql = sql.replace("{scope}", "")
        else:
            sub_sql, sub_params = _ids_sql(devices_qs)
            rr = connection.ops.quote_name(ReadRight._meta.db_table)
            sql = sql.replace("{scope}", f" AND {rr}.device_id IN ({sub_sql})")
            params.extend(sub_params)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return 0
        working = [device_id for device_id, expires in rows if _still_working(expires, now)]
        owners = org_ids
        if len(org_ids) > 1:
            owners = sorted(
                set(
                    ReadRight.objects.filter(
                        grantee=grantee, revoked_at=now, revoked_by=revoked_by
                    ).values_list("device__owner_id", flat=True)
                )
            )
        if working:
            emails.rights_revoked(
                grantee.email,
                revoked_by=revoked_by,
                organization=_org_name(owners),
                count=len(working),
            )
        record(
            "revoke",
            actor=revoked_by,
            request=request,
            object_type="device",
            object_ids=working,
            count=len(working),
            detail={"grantee": grantee.email, "scope": "all" if devices_qs is None else "some"},
        )
    return len(working)
