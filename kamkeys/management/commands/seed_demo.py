"""Demo data like the reference screenshots: a distributor, two customers, 106+ devices."""

from __future__ import annotations

import argparse
import random
import secrets
from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from accounts.models import Membership, Organization, User
from devices.device_codes import hash_device_code
from devices.models import Device
from kamkeys.demo import DEMO_TOTP_SECRET, ensure_demo_totp
from keyvault.services import store_device_keys_bulk
from readrights.models import ReadRight

DEMO_PASSWORD = "Demo-Meter-Keys-2026!"  # noqa: S105 - printed on purpose: it is the demo's login
STAFF_EMAIL = "staff@kamkeys.example"
SUPER_USER_EMAIL = "super@nordic-meters.example"
CUSTOMER_EMAILS = ["anna@aarhus-vand.example", "ole@odense-forsyning.example"]


@dataclass(frozen=True)
class Batch:
    device_type: str
    type_no: str
    config_no: str
    consumption_type: str
    kind: str
    order_no: str
    serials: list[str]
    gpks: int = 0


def demo_batches() -> list[Batch]:
    """Serials in ranges like real sales orders; 63001468, 63001633 and 63001634 among them."""
    mc21 = [f"{n:08d}" for n in range(63001468, 63001468 + 12)]
    mc21 += [f"{n:08d}" for n in range(63001620, 63001620 + 30)]
    return [
        Batch("MULTICAL 21", "021A1B2C3D4", "3C0110", "Water", "meter", "4501287", mc21),
        Batch(
            "flowIQ 2200",
            "022A0B1C2D3",
            "2A0003",
            "Water",
            "meter",
            "4501302",
            [f"{n:08d}" for n in range(71254300, 71254300 + 20)],
        ),
        Batch(
            "MULTICAL 403",
            "403T2C1AB12",
            "40300A1",
            "Heat",
            "meter",
            "4501317",
            [f"{n:08d}" for n in range(68223100, 68223100 + 14)],
        ),
        Batch(
            "MULTICAL 603",
            "603T2C1AB14",
            "60300B2",
            "Heat",
            "meter",
            "4501322",
            [f"{n:08d}" for n in range(69004410, 69004410 + 10)],
        ),
        Batch(
            "OMNIPOWER",
            "6841131BN243101",
            "",
            "Electricity",
            "meter",
            "4501349",
            [f"{n:08d}" for n in range(57301200, 57301200 + 16)],
            gpks=4,
        ),
        Batch(
            "READy Concentrator",
            "RC1-230",
            "",
            "Concentrator",
            "concentrator",
            "4501355",
            [f"{n:08d}" for n in range(90001001, 90001001 + 4)],
        ),
    ]


def demo_device_code(serial: str) -> str:
    """Stable per serial, so the printed register-a-device example stays true across reseeds."""
    return f"{random.Random(f'kamkeys-demo-{serial}').randrange(100):02d}"  # noqa: S311


class Command(BaseCommand):
    help = (
        "Fill the database with demo data: a staff user and a distributor's Super User (both "
        "with TOTP set up), two customer organizations with users and read rights, and 106 "
        "devices of realistic types with their keys in the key vault. Safe to run again: it only "
        "adds what is missing. Refuses to run in production unless --force is given."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Seed even with KAMKEYS_ENV=production."
        )

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        if settings.PRODUCTION and not force:
            raise CommandError("this is a production database; use --force to seed demo data")
        with transaction.atomic():
            created_devices = self.seed()
        self.report(created_devices)

    def user(self, email: str, name: str, **extra: Any) -> User:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email, DEMO_PASSWORD, name=name, **extra)
        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return user

    def organization(self, name: str, number: str, kind: str) -> Organization:
        org, _ = Organization.objects.get_or_create(
            customer_number=number, defaults={"name": name, "kind": kind}
        )
        return org

    def seed(self) -> int:
        """Everything the demo needs, adding only what is missing; returns the new devices."""
        staff = self.user(STAFF_EMAIL, "Sofie Staff", is_staff=True, is_superuser=True)
        ensure_demo_totp(staff)  # the admin opens only with a second factor
        distributor = self.organization(
            "Nordic Meter Distribution A/S", "1000123", Organization.Kind.DISTRIBUTOR
        )
        super_user = self.user(SUPER_USER_EMAIL, "Dorthe Distributor")
        Membership.objects.update_or_create(
            user=super_user,
            organization=distributor,
            defaults={"role": Membership.Role.SUPER_USER},
        )
        ensure_demo_totp(super_user)
        customers = self.customers()
        created = self.devices(distributor)
        # The first customer holds read rights to the first MULTICAL 21 order's devices.
        self.read_rights(customers[0], demo_batches()[0].serials[:12], granted_by=super_user)
        return created

    def customers(self) -> list[User]:
        """The two customer organizations, one user each."""
        users = []
        for email, (org_name, number, person) in zip(
            CUSTOMER_EMAILS,
            [("Aarhus Vand A/S", "2000456", "Anna Aarhus"), ("Odense Forsyning", "2000789", "Ole")],
            strict=True,
        ):
            org = self.organization(org_name, number, Organization.Kind.CUSTOMER)
            customer = self.user(email, person)
            Membership.objects.get_or_create(user=customer, organization=org)
            users.append(customer)
        return users

    def devices(self, owner: Organization) -> int:
        """The demo batches' devices not yet stored, with fresh random keys; returns how many."""
        existing = set(Device.objects.values_list("serial", flat=True))
        new_items = []
        for batch in tqdm(demo_batches(), desc="devices", unit="order", disable=None):
            for index, serial in enumerate(batch.serials):
                if serial not in existing:
                    new_items.append(self.device(batch, index, serial, owner))
        Device.objects.bulk_create([device for device, _ in new_items])
        new_serials = [device.serial for device, _ in new_items]
        saved = {d.serial: d for d in Device.objects.filter(serial__in=new_serials)}
        store_device_keys_bulk((saved[device.serial], keys) for device, keys in new_items)
        return len(new_items)

    def device(
        self, batch: Batch, index: int, serial: str, owner: Organization
    ) -> tuple[Device, dict[str, bytes]]:
        device = Device(
            serial=serial,
            device_code_hash=hash_device_code(serial, demo_device_code(serial)),
            kind=batch.kind,
            device_type=batch.device_type,
            type_no=batch.type_no,
            config_no=batch.config_no,
            consumption_type=batch.consumption_type,
            production_year=2023 + index % 3,
            order_no=batch.order_no,
            owner=owner,
        )
        keys = {"DEK": secrets.token_bytes(16)}
        for n in range(1, batch.gpks + 1):
            keys[f"GPK{n}"] = secrets.token_bytes(16)
        return device, keys

    def read_rights(self, grantee: User, serials: list[str], *, granted_by: User) -> None:
        """A read right on each of these devices the grantee does not hold yet (unrevoked)."""
        granted = set(
            ReadRight.objects.filter(grantee=grantee, revoked_at__isnull=True).values_list(
                "device_id", flat=True
            )
        )
        for device in Device.objects.filter(serial__in=serials):
            if device.pk not in granted:
                ReadRight.objects.create(device=device, grantee=grantee, granted_by=granted_by)

    def report(self, created_devices: int) -> None:
        total = Device.objects.count()
        unowned_example = demo_batches()[1].serials[0]
        self.stdout.write(
            self.style.SUCCESS(f"demo data ready: {total} devices ({created_devices} new)")
        )
        self.stdout.write(
            "\nDemo logins (password for all: "
            f"{DEMO_PASSWORD}):\n"
            f"  Super User (distributor)  {SUPER_USER_EMAIL}\n"
            f"      two-factor code: `.venv/bin/python manage.py demo_totp_code`, or add the "
            f"secret {DEMO_TOTP_SECRET} to an authenticator app\n"
            f"  Customer with read rights {CUSTOMER_EMAILS[0]}\n"
            f"  Customer without rights   {CUSTOMER_EMAILS[1]}  (try + Register device: "
            f"serial {unowned_example}, device code {demo_device_code(unowned_example)})\n"
            f"  Staff (Django admin)      {STAFF_EMAIL}  → /admin/ (the same two-factor code)\n"
        )
