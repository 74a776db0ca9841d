"""Meters and concentrators, and the devices users registered themselves."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Device(models.Model):
    """One physical meter or concentrator. Its keys live in ``keyvault.DeviceKey``."""

    class Kind(models.TextChoices):
        METER = "meter", "Meter"
        CONCENTRATOR = "concentrator", "Concentrator"

    manufacturer = models.CharField(
        max_length=3, default="KAM", help_text="Three-letter M-Bus manufacturer (vendor) id."
    )
    serial = models.CharField("serial number", max_length=8)
    device_code_hash = models.CharField(
        max_length=128, help_text="Keyed hash of the 2-digit device code; the code is never shown."
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.METER)
    device_type = models.CharField("type", max_length=80)
    type_no = models.CharField("type number", max_length=40, blank=True)
    config_no = models.CharField("config number", max_length=40, blank=True)
    consumption_type = models.CharField(max_length=40, blank=True)
    production_year = models.PositiveSmallIntegerField(null=True, blank=True)
    order_no = models.CharField("order number", max_length=40, blank=True)
    owner = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="devices",
        # No database foreign key and no index of its own: the (owner, …) indexes serve owner
        # lookups, and PostgreSQL statement triggers (migration 0007) check the reference once
        # per statement instead of once per row, a tenth of a bulk import's time.
        db_constraint=False,
        db_index=False,
        help_text="TRANSFERRED TO: the account the device was transferred to from the sales order.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the device last changed (created, edited, transferred): the API's ``changed_since``.
    # The database fills it on insert (the import's COPY leaves it out) and, on PostgreSQL, a row
    # trigger (migration 0011) moves it on every update, also ``save(update_fields=...)`` ones.
    changed_at = models.DateTimeField(db_default=Now(), auto_now=True, editable=False)

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "serial"], name="devices_device_serial_unique"
            )
        ]
        indexes = [
            # The API's "changed since": an organization's recently changed devices.
            models.Index(fields=["owner", "changed_at"], name="devices_owner_changed"),
        ]
        # The search indexes are PostgreSQL-only (migrations 0003, 0004); on SQLite the unique
        # constraint and the primary key serve the embedded default's few hundred devices.

    def __str__(self) -> str:
        return f"{self.serial} ({self.device_type})"

    @classmethod
    def columns(cls, *, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The table's columns in field order, read from ``_meta``: the one column list the
        import writer's COPY, the download's key stream and the admin are built from, so a new
        column is declared once, here. ``exclude`` names columns (``owner_id``) to leave out."""
        return tuple(
            field.column for field in cls._meta.concrete_fields if field.column not in exclude
        )

    @classmethod
    def data_fields(cls) -> list[str]:
        """The field names staff see and edit in the admin: every field but the id and the
        device code hash (a keyed hash, never shown)."""
        return [
            field.name
            for field in cls._meta.concrete_fields
            if field.column not in {"id", "device_code_hash"}
        ]


class DeviceRegistration(models.Model):
    """A user added a device to their own list with its serial and device code.

    The owning organization's Super Users see it beside read rights and may end it. An ended
    registration stays (``ended_at``/``ended_by``, the audit trail) and gives no access; because
    the row is unique per user and device, it also keeps that user from registering the device
    again with the same code: after an owner ended it, access comes back only as a read right."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_registrations"
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="registrations")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The Super User of the owning organization who ended the registration.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device"], name="devices_registration_unique")
        ]

    def __str__(self) -> str:
        ended = " (ended)" if self.ended_at else ""
        return f"{self.user} registered {self.device}{ended}"


class RegistrationAttempt(models.Model):
    """One try at registering a device by serial + device code; failures drive the limits
    (per serial across all accounts, and per account) that keep the 100 codes unguessable."""

    class Outcome(models.TextChoices):
        OK = "ok", "Registered"
        FAILED = "failed", "Wrong serial number or code"
        LOCKED = "locked", "Refused while locked"
        ENDED = "ended", "Refused: the owner ended this user's registration"
        CLOSED = "closed", "Refused: the owner ended a registration of this device"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    serial = models.CharField(max_length=8)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["serial", "outcome", "created_at"], name="devices_attempt_serial"),
            models.Index(fields=["user", "outcome", "created_at"], name="devices_attempt_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} tried {self.serial}: {self.outcome}"


class OwnerTypeCount(models.Model):
    """How many devices of each type each organization owns, kept exact by PostgreSQL statement
    triggers on devices_device (migration 0006), so "Number of devices in your search" for a
    Super User's whole list, or a TYPE / TRANSFERRED TO search of it, is a sum of a few rows
    instead of a count over a million index entries. Not used on SQLite."""

    owner_id = models.BigIntegerField()
    device_type = models.CharField(max_length=80)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "device_type"], name="devices_ownertypecount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"organization {self.owner_id}: {self.n} × {self.device_type}"


class OwnerOrderCount(models.Model):
    """How many devices each organization owns with each order number, kept exact by PostgreSQL
    statement triggers on devices_device (migration 0013); a row whose count falls to 0 is
    deleted. Many devices share an order number, so an ORDER # substring search finds the
    matching numbers among an owner's few distinct ones (a trigram index on this table) and sums
    their counts, instead of reading every matching device (``devices.counts.order_search_count``).
    Not used on SQLite."""

    owner_id = models.BigIntegerField()
    order_no = models.CharField(max_length=40)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "order_no"], name="devices_ownerordercount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"organization {self.owner_id}: {self.n} × order {self.order_no}"


class DeviceSelection(models.Model):
    """The "My devices" selection of one login session, in its own small row.

    Not in the session blob: every request saves the whole session (SESSION_SAVE_EVERY_REQUEST),
    so two requests of one session that ran at once overwrote each other's selection change.
    Here each change locks this row, re-reads it and writes it back inside one transaction.
    ``key`` is a keyed hash that the session carries (see ``devices.selection``), never the
    session key itself; a row is only ever read together with its ``user``.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="device_selection_per_session")
        ]

    def __str__(self) -> str:
        return f"selection of user {self.user_id}"
