"""Factories for the personas every test talks about."""

from __future__ import annotations

import functools
import itertools
import os
import time
from importlib import import_module
from typing import Any

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils.module_loading import import_string

from accounts.models import Membership, Organization, User
from audit.context import AuditContext, Channel
from devices.models import Device

DEFAULT_PASSWORD = "Correct-Horse-Battery-9!"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _password_hash() -> str:
    """One hash per hasher setting for every factory user (Argon2 per user would make the suite
    slow), made on first use: a bench that only logs in (``login``) never hashes, so Argon2's
    100 MB of working memory stays out of the peak RSS it reports."""
    return _password_hash_by(settings.PASSWORD_HASHERS[0])


@functools.cache
def _password_hash_by(hasher: str) -> str:
    return make_password(DEFAULT_PASSWORD, hasher=import_string(hasher)())


_serials = itertools.count(70_000_000 + (os.getpid() % 1000) * 10_000)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    customer_number = factory.Sequence(lambda n: f"C{100000 + n}")
    kind = Organization.Kind.CUSTOMER


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = ""
    password = factory.LazyFunction(_password_hash)

    @factory.post_generation
    def verified_email(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


def next_serial() -> str:
    return f"{next(_serials) % 100_000_000:08d}"


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    serial = factory.LazyFunction(next_serial)
    device_code_hash = "unset"
    device_type = "MULTICAL 21"
    type_no = "021A1B2C3"
    config_no = "3C001"
    consumption_type = "Water"
    order_no = factory.Sequence(lambda n: f"{5_000_000 + n}")
    owner = None


def make_super_user(organization: Organization, *, with_mfa: bool = True, **kw: Any) -> User:
    """A distributor's Super User; with TOTP set up, as the MFA rule demands for key actions."""
    user = UserFactory(**kw)
    Membership.objects.create(user=user, organization=organization, role=Membership.Role.SUPER_USER)
    if with_mfa:
        TOTP.activate(user, generate_totp_secret())
    return user


def make_staff(*, with_mfa: bool = True, superuser: bool = True, **kw: Any) -> User:
    """Manufacturer staff (a Django superuser unless told otherwise); with TOTP set up, as the
    admin demands of every staff account."""
    user = UserFactory(is_staff=True, is_superuser=superuser, **kw)
    if with_mfa:
        TOTP.activate(user, generate_totp_secret())
    return user


def make_member(organization: Organization, **kw: Any) -> User:
    user = UserFactory(**kw)
    Membership.objects.create(user=user, organization=organization, role=Membership.Role.MEMBER)
    return user


def login(client: Client, user: User, *, mfa: bool = True) -> Client:
    """Log in and record a fresh password (and TOTP) authentication, as allauth's login would.

    A client without a session gets one written straight into the session store, in one save:
    django.contrib.auth.login's signal, key cycling and the session saved twice were most of a
    login's cost, and the suite logs in hundreds of times. A client that already has a
    session (data from before the login to keep) goes through force_login."""
    now = time.time()
    records: list[dict[str, Any]] = [{"method": "password", "at": now, "email": user.email}]
    if mfa:
        records.append({"method": "mfa", "at": now, "type": "totp"})
    if settings.SESSION_COOKIE_NAME in client.cookies:
        client.force_login(user, backend=MODEL_BACKEND)
        session = client.session
    else:
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = MODEL_BACKEND
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session["account_authentication_methods"] = records
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return client


def store_selection(client: Client, user: User, ids: list[int]) -> None:
    """Write a selection of these ids straight into the client's session selection (as a stale
    or forged selection would be): views must still limit it to what the user may see."""
    from django.utils import timezone

    from devices.models import DeviceSelection
    from devices.selection import selection_key

    session = client.session
    key = selection_key(session)
    session.save()
    DeviceSelection.objects.update_or_create(
        user=user,
        key=key,
        defaults={
            "data": {"ids": ids, "searches": [], "excluded": []},
            "updated_at": timezone.now(),
        },
    )


def stored_selection_ids(client: Client, user: User) -> set[int]:
    """The explicitly selected ids stored for the client's session."""
    from devices.models import DeviceSelection
    from devices.selection import selection_key

    data = (
        DeviceSelection.objects.filter(user=user, key=selection_key(client.session))
        .values_list("data", flat=True)
        .first()
    )
    return set((data or {}).get("ids", []))


def web(user: Any = None) -> AuditContext:
    """The audit context of a page request by ``user`` (None: a visitor not logged in)."""
    return AuditContext(actor=user, client_ip=None, channel=Channel.WEB)
