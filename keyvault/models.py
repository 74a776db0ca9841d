"""Wrapped device keys."""

from __future__ import annotations

from django.db import models


class DeviceKey(models.Model):
    """One key of a device (DEK, GPK1…GPK4), wrapped under a versioned KEK. Never plain."""

    # No index of its own: the unique (device, name) constraint below serves device lookups.
    # No database foreign key: PostgreSQL statement triggers (migration 0003) check the device
    # once per statement and remove keys with their devices; row-level checks cost an import
    # of a million keys about ten seconds.
    device = models.ForeignKey(
        "devices.Device",
        on_delete=models.CASCADE,
        related_name="keys",
        db_index=False,
        db_constraint=False,
    )
    name = models.CharField(max_length=16)
    wrapped = models.BinaryField()
    kek_version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "name"], name="keyvault_devicekey_unique")
        ]
        # No index on kek_version: rotation walks the primary key (keyset pagination) and an
        # index on the column it rewrites would make every rewrap update one index more.

    def __str__(self) -> str:
        return f"{self.name} of device {self.device_id} (KEK v{self.kek_version})"
