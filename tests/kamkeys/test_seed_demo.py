"""seed_demo gives a newcomer a portal that looks like the reference service, and is idempotent."""

from __future__ import annotations

import pytest
from allauth.mfa.utils import is_mfa_enabled
from django.core.management import call_command

from accounts.models import Membership, Organization, User
from devices.access import visible_devices
from devices.device_codes import check_device_code
from devices.models import Device
from kamkeys.management.commands.seed_demo import (
    CUSTOMER_EMAILS,
    SUPER_USER_EMAIL,
    demo_device_code,
)
from keyvault.models import DeviceKey
from keyvault.services import plain_keys_of

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_demo_world_and_can_run_twice(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "106 devices (0 new)" in out

    assert Device.objects.count() == 106
    assert set(Device.objects.values_list("device_type", flat=True)) >= {
        "MULTICAL 21",
        "flowIQ 2200",
        "MULTICAL 403",
        "MULTICAL 603",
        "OMNIPOWER",
        "READy Concentrator",
    }
    for serial in ("63001468", "63001633", "63001634"):
        assert Device.objects.filter(serial=serial).exists()
    assert Organization.objects.filter(kind=Organization.Kind.CUSTOMER).count() == 2
    assert User.objects.filter(is_staff=True).count() == 1
    assert is_mfa_enabled(User.objects.get(is_staff=True))  # the admin demands it

    super_user = User.objects.get(email=SUPER_USER_EMAIL)
    assert Membership.objects.get(user=super_user).role == Membership.Role.SUPER_USER
    assert is_mfa_enabled(super_user)
    assert visible_devices(super_user).count() == 106

    anna = User.objects.get(email=CUSTOMER_EMAILS[0])
    assert visible_devices(anna).count() == 12
    assert visible_devices(User.objects.get(email=CUSTOMER_EMAILS[1])).count() == 0


def test_seeded_keys_are_wrapped_and_unwrap_to_16_bytes():
    call_command("seed_demo")
    omnipower = Device.objects.filter(device_type="OMNIPOWER").first()
    keys = plain_keys_of(omnipower)
    assert set(keys) == {"DEK", "GPK1", "GPK2", "GPK3", "GPK4"}
    assert all(len(key) == 16 for key in keys.values())
    stored = DeviceKey.objects.filter(device=omnipower).first()
    assert bytes(stored.wrapped) not in keys.values()


def test_the_printed_device_code_registers_the_example_device():
    call_command("seed_demo")
    device = Device.objects.get(serial="71254300")
    assert check_device_code("71254300", demo_device_code("71254300"), device.device_code_hash)
