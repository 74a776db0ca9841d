"""Hardening tests: one "world" of two distributors and their customers. The figures each
hardening test adds to: tests/hardening/figures.py."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.factories import web


@dataclass
class World:
    """Everything the roles act on, with what each role may see."""

    users: dict[str, Any]
    devices_x: list[Any]
    devices_y: list[Any]
    device_a: Any  # registered by user A himself (owned by Y)
    device_b: Any  # registered by user B himself (owned by X)
    key_hex: list[str]
    invitation_x: Any
    invitation_y: Any
    token_x: str
    token_y: str
    invitee_x: str = "invitee.x@utility-new.example"
    invitee_y: str = "invitee.y@utility-new.example"
    registration_a: Any = None  # user A's registration of device_a: Y's Super User may end it
    registration_b: Any = None  # user B's registration of device_b: X's Super User may end it
    extra: dict[str, Any] = field(default_factory=dict)

    def all_devices(self) -> list[Any]:
        return [*self.devices_x, *self.devices_y, self.device_a, self.device_b]

    def all_emails(self) -> set[str]:
        return {u.email for u in self.users.values() if u is not None} | {
            self.invitee_x,
            self.invitee_y,
        }


def _token_of(invitation: Any) -> str:
    from kamkeys.models import OutboundEmail
    from kamkeys.outbox import open_context

    for row in OutboundEmail.objects.filter(to=invitation.email).order_by("-pk"):
        url = open_context(row.sealed_context).get("accept_url", "")
        if "/invitation/" in url:
            return url.rstrip("/").rsplit("/", 1)[1]
    raise AssertionError(f"no invitation email for {invitation.email}")


def build_world() -> World:
    """Organizations X and Y with keyed devices, customers with a live, a revoked and an expired
    right on X's devices, a customer of Y, plain users who registered a device each, staff."""
    from accounts.models import Organization
    from devices.device_codes import hash_device_code
    from devices.models import Device, DeviceRegistration
    from keyvault.services import store_device_keys
    from readrights.models import Invitation, ReadRight
    from readrights.services import assign_read_rights
    from tests.factories import (
        DeviceFactory,
        OrganizationFactory,
        UserFactory,
        make_member,
        make_staff,
        make_super_user,
    )

    org_x = OrganizationFactory(name="Distributor X A/S", kind=Organization.Kind.DISTRIBUTOR)
    org_y = OrganizationFactory(name="Distributor Y GmbH", kind=Organization.Kind.DISTRIBUTOR)
    utility = OrganizationFactory(name="Aarhus Water Utility", kind=Organization.Kind.CUSTOMER)
    users: dict[str, Any] = {
        "anonymous": None,
        "user_a": UserFactory(email="user.a@plain.example", name="Anna Plain"),
        "user_b": UserFactory(email="user.b@plain.example", name="Bert Plain"),
        "customer_live": make_member(utility, email="live@utility.example", name="Liv Live"),
        "customer_revoked": make_member(utility, email="revoked@utility.example", name="Rev"),
        "customer_expired": make_member(utility, email="expired@utility.example", name="Exp"),
        "customer_y": UserFactory(email="cust.y@other-utility.example", name="Yvonne Cust"),
        "super_x": make_super_user(org_x, email="super.x@distributor-x.example", name="Xenia"),
        "super_y": make_super_user(org_y, email="super.y@distributor-y.example", name="Yann"),
        "staff": make_staff(email="staff@manufacturer.example"),
    }
    devices_x = DeviceFactory.create_batch(4, owner=org_x)
    devices_y = DeviceFactory.create_batch(3, owner=org_y, device_type="flowIQ 2200")
    device_a = DeviceFactory(owner=org_y, device_type="MULTICAL 403", type_no="403T0001")
    device_b = DeviceFactory(owner=org_x)
    key_hex = []
    for number, device in enumerate([*devices_x, *devices_y, device_a, device_b]):
        key = bytes([0xA0 + number]) + bytes(range(1, 16))
        store_device_keys(device, {"DEK": key})
        key_hex.append(key.hex())
        device.device_code_hash = hash_device_code(device.serial, f"{number + 10:02d}")
        device.save(update_fields=["device_code_hash"])
    registration_a = DeviceRegistration.objects.create(user=users["user_a"], device=device_a)
    registration_b = DeviceRegistration.objects.create(user=users["user_b"], device=device_b)
    now = timezone.now()
    sx, sy = users["super_x"], users["super_y"]
    ReadRight.objects.create(device=devices_x[0], grantee=users["customer_live"], granted_by=sx)
    ReadRight.objects.create(
        device=devices_x[1],
        grantee=users["customer_revoked"],
        granted_by=sx,
        revoked_at=now - timedelta(days=1),
        revoked_by=sx,
    )
    expired = ReadRight.objects.create(
        device=devices_x[2], grantee=users["customer_expired"], granted_by=sx
    )
    ReadRight.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(days=1))
    ReadRight.objects.create(device=devices_y[0], grantee=users["customer_y"], granted_by=sy)
    invitee_x, invitee_y = World.invitee_x, World.invitee_y
    assign_read_rights(
        devices_qs=Device.objects.filter(pk=devices_x[3].pk), emails_in=[invitee_x], context=web(sx)
    )
    assign_read_rights(
        devices_qs=Device.objects.filter(pk=devices_y[1].pk), emails_in=[invitee_y], context=web(sy)
    )
    invitation_x = Invitation.objects.get(email=invitee_x)
    invitation_y = Invitation.objects.get(email=invitee_y)
    return World(
        users=users,
        devices_x=devices_x,
        devices_y=devices_y,
        device_a=device_a,
        device_b=device_b,
        key_hex=key_hex,
        invitation_x=invitation_x,
        invitation_y=invitation_y,
        token_x=_token_of(invitation_x),
        token_y=_token_of(invitation_y),
        registration_a=registration_a,
        registration_b=registration_b,
    )


@pytest.fixture
def world(db) -> World:  # noqa: ANN001
    return build_world()


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A StreamHandler on the root logger (and on loggers that do not propagate), at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    targets = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in targets:
        logger.addHandler(handler)
    yield stream
    for logger in targets:
        logger.removeHandler(handler)
