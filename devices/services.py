"""Writes of "My devices": register by serial + device code, remove from one's own list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.access import enforce_custody
from accounts.models import Organization, User
from accounts.selectors import is_super_user
from accounts.services import notify_device_transfer
from audit.context import AuditContext
from audit.models import Action
from audit.services import record
from devices.access import active_registrations, manageable_condition, read_rights_held_by
from devices.device_codes import check_device_code
from devices.models import Device, DeviceRegistration, RegistrationAttempt
from kamkeys.links import public_page_url

WINDOW = timedelta(hours=24)
CHUNK = 5000


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@dataclass(frozen=True)
class RegisterResult:
    """``status``: "registered", "already" (already in the list), "wrong", "locked",
    "ended" (the owner ended this user's registration of the device), or "closed" (the owner
    ended someone's registration of it, so its code registers it for nobody; see
    register_device)."""

    status: str
    device: Device | None = None
    retry_after: datetime | None = None


def _failures(**where: Any) -> QuerySet[RegistrationAttempt]:
    return RegistrationAttempt.objects.filter(
        outcome=RegistrationAttempt.Outcome.FAILED,
        created_at__gte=timezone.now() - WINDOW,
        **where,
    )


def _lock_ends(failures: QuerySet[RegistrationAttempt], limit: int) -> datetime | None:
    """When the window has room again, or None when it has room now."""
    times = list(failures.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(times) < limit:
        return None
    return times[-1] + WINDOW


def register_device(*, serial: str, code: str, context: AuditContext) -> RegisterResult:
    """Add a device to the acting user's own list if serial and device code match.

    Only 100 codes exist, so failures are limited per serial (across all accounts) and per
    account within 24 hours; while either limit is reached every attempt, even with the right
    code, is refused without checking the code. Unknown serials count as failures and get the
    same answer as wrong codes, so the form does not tell which serials exist."""
    user = context.actor
    with transaction.atomic():
        # Serialise one account's attempts, and all attempts on one device, so parallel requests
        # cannot slip past the limits.
        User.objects.select_for_update().filter(pk=user.pk).first()
        candidates = list(Device.objects.select_for_update().filter(serial=serial).order_by("pk"))
        attempt = _Attempt(user=user, serial=serial, context=context)
        locked_until = _locked_until(user, serial)
        if locked_until is not None:
            attempt.refused(RegistrationAttempt.Outcome.LOCKED, outcome="locked")
            return RegisterResult("locked", retry_after=locked_until)
        device = next(
            (d for d in candidates if check_device_code(serial, code, d.device_code_hash)), None
        )
        if device is None:
            attempt.refused(RegistrationAttempt.Outcome.FAILED, outcome="failed")
            return RegisterResult("wrong")
        earlier = DeviceRegistration.objects.filter(user=user, device=device).first()
        if earlier is not None and earlier.ended_at is not None:
            # The owner ended this user's registration: knowing the code does not bring it back
            # (the owner can give a read right instead). Not a failure: the code was right.
            attempt.refused(
                RegistrationAttempt.Outcome.ENDED,
                outcome="refused",
                reason="registration ended by the owner",
            )
            return RegisterResult("ended")
        if (
            earlier is None
            and DeviceRegistration.objects.filter(device=device, ended_at__isnull=False).exists()
        ):
            # Once the owner has ended a registration of this device, its code adds it to no
            # list: otherwise the person whose access was ended registers again from a second
            # account. Whoever needs the keys asks the owner for a read right.
            attempt.refused(
                RegistrationAttempt.Outcome.CLOSED,
                outcome="refused",
                reason="registration by code closed by the owner",
            )
            return RegisterResult("closed")
        created = earlier is None
        if created:
            DeviceRegistration.objects.create(user=user, device=device)
        attempt.registered(device, created=created)
        return RegisterResult("registered" if created else "already", device=device)


def _locked_until(user: User, serial: str) -> datetime | None:
    """When the later of the two limits (per serial, per account) has room again, or None."""
    per_serial = _limit("KAMKEYS_REGISTER_MAX_FAILURES_PER_SERIAL", 5)
    per_account = _limit("KAMKEYS_REGISTER_MAX_FAILURES_PER_ACCOUNT", 20)
    ends = [
        end
        for end in (
            _lock_ends(_failures(serial=serial), per_serial),
            _lock_ends(_failures(user=user), per_account),
        )
        if end is not None
    ]
    return max(ends) if ends else None


@dataclass(frozen=True)
class _Attempt:
    """One registration attempt: its row (which the limits count) and its audit event."""

    user: User
    serial: str
    context: AuditContext

    def refused(self, kind: str, *, outcome: str, reason: str = "") -> None:
        RegistrationAttempt.objects.create(user=self.user, serial=self.serial, outcome=kind)
        detail = {"serial": self.serial, **({"reason": reason} if reason else {})}
        record(
            Action.DEVICE_REGISTER,
            context=self.context,
            object_type="device",
            outcome=outcome,
            count=0,
            detail=detail,
        )

    def registered(self, device: Device, *, created: bool) -> None:
        RegistrationAttempt.objects.create(
            user=self.user, serial=self.serial, outcome=RegistrationAttempt.Outcome.OK
        )
        record(
            Action.DEVICE_REGISTER,
            context=self.context,
            object_type="device",
            object_ids=[device.pk],
            detail={"serial": self.serial, "new": created},
        )


@dataclass(frozen=True)
class RemovePlan:
    """What "Remove device" would do with the selection."""

    removable: int
    owned: int

    @property
    def total(self) -> int:
        return self.removable + self.owned


def _split(user: User, selected: QuerySet[Device]) -> tuple[QuerySet[Device], QuerySet[Device]]:
    """(devices the user may drop from their list, devices their organizations own: those stay)."""
    selected = selected.order_by()
    if not is_super_user(user):
        return selected, Device.objects.none()
    owned = manageable_condition(user)
    return selected.exclude(owned), selected.filter(owned)


def plan_removal(user: User, selected: QuerySet[Device]) -> RemovePlan:
    removable, owned = _split(user, selected)
    return RemovePlan(removable=removable.count(), owned=owned.count())


def remove_devices(selected: QuerySet[Device], *, context: AuditContext) -> RemovePlan:
    """Drop the user's own registrations and read rights for the selected devices. Devices the
    user's organization owns stay: ownership is managed by the manufacturer."""
    user = context.actor
    with transaction.atomic():
        removable, owned = _split(user, selected)
        ids = list(removable.values_list("pk", flat=True))
        owned_count = owned.count()
        now = timezone.now()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            # Only registrations that still work: one the owner ended stays, with who ended it,
            # and keeps blocking a silent re-registration.
            active_registrations().filter(user=user, device_id__in=chunk).delete()
            read_rights_held_by(user).filter(device_id__in=chunk, revoked_at__isnull=True).update(
                revoked_at=now, revoked_by=user
            )
        if ids:
            record(
                Action.DEVICE_REMOVE,
                context=context,
                object_type="device",
                object_ids=ids,
                count=len(ids),
                detail={"kept_owned": owned_count} if owned_count else None,
            )
        return RemovePlan(removable=len(ids), owned=owned_count)


def record_device_edit(
    *, device: Device, changes: dict[str, tuple[Any, Any]], context: AuditContext
) -> None:
    """Audit a change of a device's data by staff (type, order number, kind …; ``changes``
    maps each field to its value before and after). These values go into the key files
    customers receive, so who changed what is kept, as for a transfer."""
    if not changes:
        return
    record(
        Action.DEVICE_EDIT,
        context=context,
        object_type="device",
        object_ids=[device.pk],
        detail={
            "serial": device.serial,
            "changes": {
                name: ["" if old is None else str(old), "" if new is None else str(new)]
                for name, (old, new) in changes.items()
            },
        },
    )


def transfer_device(
    *, device: Device, new_owner: Organization | None, context: AuditContext
) -> Device:
    """Give a device to another organization (or to none). Its Super Users can then download
    its keys, so this is a change of custody: refused when the actor belongs to the new owner
    (accounts.access.custody_refusal), audited, and emailed to the Super Users of the old and
    the new owner and to staff."""
    with transaction.atomic():
        locked = (
            Device.objects.select_for_update(of=("self",)).select_related("owner").get(pk=device.pk)
        )
        old_owner = locked.owner
        if (old_owner.pk if old_owner else None) == (new_owner.pk if new_owner else None):
            return locked
        by = context.actor
        enforce_custody(by, organizations=[new_owner])
        locked.owner = new_owner
        locked.save(update_fields=["owner"])
        record(
            Action.TRANSFER,
            context=context,
            object_type="device",
            object_ids=[locked.pk],
            detail={
                "owner_id": new_owner.pk if new_owner else None,
                "previous_owner_id": old_owner.pk if old_owner else None,
            },
        )
        notify_device_transfer(
            serials=[locked.serial],
            count=1,
            from_organization=old_owner,
            to_organization=new_owner,
            by=by,
            admin_url=public_page_url(
                "admin:devices_device_change", locked.pk, origin=context.origin
            ),
        )
    device.owner = new_owner
    return locked
