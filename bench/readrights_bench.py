"""Benchmark of read rights at scale: one customer gets 100,000 devices in one action.

    .venv/bin/python bench/readrights_bench.py [--runs 3] [--devices 100000]

Fills its own PostgreSQL database (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/kk_bench_readrights): one distributor owning N devices, other
organizations owning 2N more, a Super User and an existing customer. Then it measures, end to end
(transaction, INSERT … SELECT, audit event, outbox email — Celery eager, locmem mail):

- assign N devices to an existing customer, through the real view (selection "all devices",
  confirm POST) and through the service alone;
- invite an unknown address with N devices, and accepting that invitation (N rights);
- revoke all N rights;
- the Edit read rights page with N devices selected, and User Administration.

JSON goes to stdout (seconds; target: assign ≤ 3 s), progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kk_bench_readrights"
)
os.environ["DATABASE_URL"] = DB_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")
os.environ.pop("REDIS_URL", None)  # locmem cache, eager tasks

PASSWORD = "Bench-Read-Rights-2026!"
TARGET_SECONDS = 3.0

from devices_fill import ensure_database  # noqa: E402 - bench/ is on sys.path


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(n: int) -> dict[str, Any]:
    """N devices of the bench distributor, 2N of other organizations, and the people."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Membership, Organization, User
    from devices.models import Device

    call_command("migrate", verbosity=0)
    org = Organization.objects.filter(customer_number="RB0000").first()
    if org is None or Device.objects.filter(owner=org).count() != n:
        log(f"loading {3 * n:,} devices")
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE devices_device, readrights_readright CASCADE")
        Organization.objects.filter(customer_number__startswith="RB").delete()
        org = Organization.objects.create(
            name="Bench Distributor A/S", customer_number="RB0000", kind="distributor"
        )
        other = Organization.objects.create(
            name="Bench Other GmbH", customer_number="RB0001", kind="distributor"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO devices_device (manufacturer, serial, device_code_hash, kind,
                    device_type, type_no, config_no, consumption_type, production_year, order_no,
                    owner_id, created_at)
                SELECT 'KAM', lpad(g::text, 8, '0'), 'unset', 'meter', 'MULTICAL 21',
                       '021A1B2C3', '3C001', 'Water', 2024, (5000000 + g / 50)::text,
                       CASE WHEN g %% 3 = 0 THEN %s ELSE %s END, now()
                FROM generate_series(1, %s) AS g
                """,
                [org.pk, other.pk, 3 * n],
            )
            cursor.execute("VACUUM ANALYZE devices_device")
    password = make_password(PASSWORD)
    people = {}
    for email, role in (
        ("super@bench-distributor.example", "super_user"),
        ("customer@bench-utility.example", None),
    ):
        user, created = User.objects.get_or_create(email=email, defaults={"password": password})
        if created:
            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
            if role:
                Membership.objects.create(user=user, organization=org, role=role)
                TOTP.activate(user, generate_totp_secret())
        people[email.split("@")[0]] = user
    return {"org": org, **people}


def reset(org: Any) -> None:
    """Every run starts from nobody holding rights and no invitations."""
    from django.db import connection

    from readrights.models import Invitation

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE readrights_readright")
    Invitation.objects.filter(organization=org).delete()
    User = __import__("accounts.models", fromlist=["User"]).User
    User.objects.filter(email="invitee@bench-utility.example").delete()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def logged_in_client(user: Any) -> Any:
    from django.test import Client

    from tests.factories import login

    client = login(Client(), user)
    session = client.session
    for record in session["account_authentication_methods"]:
        record["reauthenticated"] = True
    session["account_authentication_methods"] = list(session["account_authentication_methods"])
    session["devices_selection"] = {"ids": [], "searches": [{}], "excluded": []}
    session.save()
    return client


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ALLOWED_HOSTS = ["testserver"]
    ensure_database()
    from django.core import mail
    from django.db import connection
    from django.urls import reverse

    from accounts.models import User
    from audit.context import AuditContext, Channel
    from devices.models import Device
    from readrights import services
    from readrights.models import ReadRight
    from tests.readrights.conftest import INVITATION_LINK

    mail.outbox = []
    load_before = round(os.getloadavg()[0], 2)
    n = args.devices
    data = fill(n)
    org, super_user, customer = data["org"], data["super"], data["customer"]
    devices = Device.objects.filter(owner=org)
    client = logged_in_client(super_user)
    results: dict[str, list[float]] = {
        "assign_view": [],
        "assign_service": [],
        "invite_service": [],
        "accept_invitation": [],
        "revoke_all": [],
        "edit_page": [],
        "user_admin_page": [],
    }
    for run in range(args.runs):
        log(f"run {run + 1}/{args.runs}")
        reset(org)
        seconds, response = timed(
            lambda: client.post(
                reverse("readrights:assign"),
                {"emails": customer.email, "action": "confirm", "device_count": str(n)},
            )
        )
        assert response.status_code == 302, response.status_code
        assert ReadRight.objects.filter(grantee=customer).count() == n
        results["assign_view"].append(seconds)
        seconds, response = timed(lambda: client.get(reverse("readrights:edit")))
        assert response.status_code == 200 and customer.email in response.content.decode()
        results["edit_page"].append(seconds)
        seconds, response = timed(lambda: client.get(reverse("readrights:user_admin")))
        assert response.status_code == 200
        results["user_admin_page"].append(seconds)
        seconds, ended = timed(
            lambda: services.revoke_read_rights(
                grantee=customer,
                context=AuditContext(actor=super_user, client_ip=None, channel=Channel.WEB),
            )
        )
        assert ended == n
        results["revoke_all"].append(seconds)
        seconds, result = timed(
            lambda: services.assign_read_rights(
                devices_qs=devices,
                emails_in=[customer.email],
                context=AuditContext(actor=super_user, client_ip=None, channel=Channel.WEB),
            )
        )
        assert result.granted[customer.email] == n
        results["assign_service"].append(seconds)
        mail.outbox = []
        seconds, result = timed(
            lambda: services.assign_read_rights(
                devices_qs=devices,
                emails_in=["invitee@bench-utility.example"],
                context=AuditContext(actor=super_user, client_ip=None, channel=Channel.WEB),
            )
        )
        assert result.invited["invitee@bench-utility.example"] == n
        results["invite_service"].append(seconds)
        token = INVITATION_LINK.search(mail.outbox[-1].body).group(1)
        seconds, acceptance = timed(
            lambda: services.accept_invitation(
                token=token,  # noqa: B023
                name="Ivy",
                password=PASSWORD,
                context=AuditContext(actor=None, client_ip=None, channel=Channel.WEB),
            )
        )
        assert acceptance.device_count == n
        results["accept_invitation"].append(seconds)
    reset(org)
    out = {
        "database": connection.vendor,
        "load_average_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "devices": n,
        "emails_per_assignment": 1,
        "target_assign_s": TARGET_SECONDS,
        "cases": {name: summary(values) for name, values in results.items()},
    }
    out["assign_within_target"] = all(
        out["cases"][k]["max_s"] <= TARGET_SECONDS for k in ("assign_view", "assign_service")
    )
    User.objects.filter(email="invitee@bench-utility.example").delete()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
