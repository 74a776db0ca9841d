"""Benchmark of the head-end API: keys of 100,000 serials through /api/v1/keys/ beside the web
download of the same devices, measured in the same run, and a device list page.

    .venv/bin/python bench/api_bench.py [--serials 100000] [--list-runs 40] [--no-warm-up]

Runs against a PostgreSQL copy of the devices bench (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/kk_bench_api: 5,000,000 devices, 1,000,000 owned by "Bench
Distributor A/S", 100,000 of them MULTICAL 21 with a DEK; make it with
``createdb -T kk_bench_devices kk_bench_api`` while nobody is connected to the original). It
migrates that database, rewraps the keys under this checkout's KEK if they were wrapped under
another, makes a fresh keys:read token for the distributor's Super User, and marks 1,000 random
devices of the distributor changed now (for the changed_since list page).

Cases: ``api_json``, ``api_zip``, ``api_kem`` name the 100,000 serials; ``api_zip_search`` asks
for the same devices by the web download's search (TYPE), so the difference to ``api_zip`` is
the cost of finding 100,000 named serials; ``web_zip`` is Download file with that search
selected. Each download case runs in its own child process (so its peak RSS is its own): the
server side through Django's test Client (middleware, DRF, ORM, unwrapping, the writers —
everything but the network); the first byte is the first chunk of the streamed body; ``cpu_ms``
is the child's own CPU time for the request (PostgreSQL's is not in it), steadier than the wall
time on a busy machine. JSON goes to stdout, progress to stderr. Not a timed test: the numbers
depend on the machine. The JSON of named serials streams in parts (api.keys): its first
byte waits for the first 1,000 serials only, and the later parts (5,000, 15,000, the rest) are
looked up on a second connection meanwhile (api.devicesets); the files wait for all of them (a
request naming an unknown serial is a 400 before anything streams), then write from the ids that
lookup read.

Each child first loads what a gunicorn worker loads at its start (``kamkeys.wsgi.warm_up``) and
serves one list page (the database connection). Before the measured cases one unmeasured
``api_json`` request runs (``warm_up`` in the report; ``--no-warm-up`` skips it): the
preparation's UPDATE and VACUUM leave PostgreSQL's buffers colder for the first case than for
the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kk_bench_api")
os.environ["DATABASE_URL"] = DB_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.pop("REDIS_URL", None)  # locmem cache (throttle counts), eager tasks
os.environ["KAMKEYS_API_KEYS_RATE"] = "1000/min"

ORG = "Bench Distributor A/S"
DOWNLOAD_TYPE = "MULTICAL 21"
ZIP_PASSWORD = "bench Correct horse 42 battery!"
KEM_PASSWORD = "BenchKem-2026!"
STATE = ROOT / "var" / "api_bench"
TOKEN_ENV = "KAMKEYS_BENCH_API_TOKEN"
CHANGED_DEVICES = 1000  # marked changed by prepare(), for the changed_since list page


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_django() -> None:
    import django
    from django.conf import settings

    django.setup()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # token emails


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """This process's CPU time, user and system: on a busy machine it moves less than the wall
    time (which also counts waiting for a core, and for PostgreSQL)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_user() -> Any:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.models import Membership, Organization, User

    org = Organization.objects.get(name=ORG)
    user, _ = User.objects.get_or_create(email="bench.super@distributor.example")
    Membership.objects.get_or_create(
        user=user, organization=org, defaults={"role": Membership.Role.SUPER_USER}
    )
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, generate_totp_secret())
    return user


def ensure_keys_unwrap(org_id: int) -> None:
    """The copied keys were wrapped under the KEK of whoever filled the database: if this
    checkout's KEK does not open them, give the devices new random keys under it."""
    from django.db import connection

    from devices.models import Device
    from keyvault.crypto import KeyUnwrapError, wrap_key
    from keyvault.kek import get_kek_source
    from keyvault.services import plain_keys_of

    sample = Device.objects.filter(owner_id=org_id, device_type=DOWNLOAD_TYPE).first()
    assert sample is not None, f"no {DOWNLOAD_TYPE} of the bench distributor"
    try:
        plain_keys_of(sample)
        return
    except KeyUnwrapError:
        log("rewrapping the bench keys under this checkout's KEK (new random keys)")
    version, kek = get_kek_source().current()
    rows = list(
        Device.objects.filter(owner_id=org_id, device_type=DOWNLOAD_TYPE).values_list(
            "pk", "serial"
        )
    )
    connection.ensure_connection()
    raw = connection.connection
    with raw.transaction(), raw.cursor() as cursor:
        cursor.execute(
            "DELETE FROM keyvault_devicekey WHERE device_id IN (SELECT id FROM "
            "devices_device WHERE owner_id = %s AND device_type = %s)",
            [org_id, DOWNLOAD_TYPE],
        )
        with cursor.copy(
            "COPY keyvault_devicekey (device_id, name, wrapped, kek_version, updated_at) FROM STDIN"
        ) as copy:
            for pk, serial in rows:
                key = os.urandom(16)
                copy.write_row(
                    (pk, "DEK", wrap_key(kek, version, serial, "DEK", key), version, "now")
                )


def prepare(serial_count: int) -> dict[str, Any]:
    from django.core.management import call_command

    from accounts.models import Organization
    from api import services
    from audit.context import AuditContext
    from devices.models import Device

    log("migrating the bench database (adds changed_at, its index, the API tables)")
    call_command("migrate", verbosity=0)
    user = bench_user()
    org = Organization.objects.get(name=ORG)
    ensure_keys_unwrap(org.pk)
    for old in user.api_tokens.filter(revoked_at__isnull=True):
        services.revoke_token(old, context=AuditContext.command(user))
    token = services.create_token(
        user,
        name="bench",
        scopes=["devices:read", "keys:read"],
        context=AuditContext.command(user),
    ).secret
    changed_since = touch_devices(org.pk)
    serials = list(
        Device.objects.filter(owner_id=org.pk, device_type=DOWNLOAD_TYPE)
        .order_by("?")
        .values_list("serial", flat=True)[:serial_count]
    )
    STATE.mkdir(parents=True, exist_ok=True)
    # The token goes to the child processes in their environment, never to a file.
    os.environ[TOKEN_ENV] = token
    (STATE / "serials.json").write_text(json.dumps(serials))
    return {"user_id": user.pk, "serials": len(serials), "changed_since": changed_since}


def touch_devices(org_id: int, count: int = CHANGED_DEVICES) -> str:
    """Mark ``count`` random devices of the organization changed now (their changed_at), and
    return a time just before: "changed since then" then matches those devices, however
    recently the database was loaded (a freshly loaded copy has every device changed within
    the hour)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        (since,) = cursor.fetchone()
        cursor.execute(
            "UPDATE devices_device SET changed_at = clock_timestamp() WHERE id IN (SELECT id "
            "FROM devices_device WHERE owner_id = %s ORDER BY random() LIMIT %s)",
            [org_id, count],
        )
        # The update cleared the visibility of the pages it touched: index-only scans (the
        # serials lookup, the list) would visit those pages' rows in the heap until autovacuum.
        cursor.execute("VACUUM devices_device")
    return since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stream(response: Any, started: float) -> tuple[float, int]:
    first = None
    size = 0
    for chunk in response.streaming_content:
        if first is None:
            first = (time.perf_counter() - started) * 1000
        size += len(chunk)
    return first or 0.0, size


def child(case: str) -> dict[str, Any]:
    """One download in this process: its first byte, wall time, size and peak RSS."""
    setup_django()
    from django.test import Client
    from django.urls import reverse

    token = os.environ[TOKEN_ENV]
    serials = json.loads((STATE / "serials.json").read_text())
    # Warm up as a running server is: what a gunicorn worker loads at start (kamkeys.wsgi:
    # the URLconf and its views, zxcvbn), then the database connection of a served request.
    from kamkeys.wsgi import warm_up

    warm_up()
    Client(headers={"Authorization": f"Bearer {token}"}).get(
        reverse("api:devices"), {"page_size": 1}
    )
    rss_before = peak_rss_mb()
    cpu_before = cpu_seconds()
    if case.startswith("api_"):
        fmt = case.removeprefix("api_").removesuffix("_search")
        body: dict[str, Any] = {"format": fmt}
        if case.endswith("_search"):  # the same devices as the web download's search
            body["search"] = {"type": DOWNLOAD_TYPE}
        else:
            body["serials"] = serials
        if fmt != "json":
            body["password"] = KEM_PASSWORD if fmt == "kem" else ZIP_PASSWORD
        payload = json.dumps(body)
        client = Client(headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        response = client.post(reverse("api:keys"), payload, content_type="application/json")
    else:
        from accounts.models import User
        from tests.factories import login

        client = login(Client(), User.objects.get(email="bench.super@distributor.example"))
        client.post(reverse("devices:selection"), {"action": "clear"})
        client.post(
            reverse("devices:selection"),
            {"action": "select_search", "type": DOWNLOAD_TYPE.lower()},
        )
        started = time.perf_counter()
        response = client.post(
            reverse("keyfiles:download"),
            {"format": "zip", "password": ZIP_PASSWORD, "password_repeat": ZIP_PASSWORD},
        )
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b""))
    first, size = _stream(response, started)
    wall = (time.perf_counter() - started) * 1000
    cpu = (cpu_seconds() - cpu_before) * 1000
    by_search = case == "web_zip" or case.endswith("_search")
    if by_search:
        from devices.models import Device

        devices = Device.objects.filter(owner__name=ORG, device_type=DOWNLOAD_TYPE).count()
    return {
        "case": case,
        "devices": devices if by_search else len(serials),
        "first_byte_ms": round(first, 1),
        "wall_ms": round(wall, 1),
        "cpu_ms": round(cpu, 1),
        "bytes": size,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_request_mb": rss_before,
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def list_pages(runs: int, changed_since: str) -> dict[str, Any]:
    """GET /api/v1/devices/ pages: the first, one deep in the list (a cursor), a search, the
    devices changed since ``changed_since``."""
    from django.test import Client

    token = os.environ[TOKEN_ENV]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    serials = json.loads((STATE / "serials.json").read_text())
    cases = {
        "first page (100)": ("/api/v1/devices/", {}),
        "serial prefix search": ("/api/v1/devices/", {"serial": serials[0][:5] + "*"}),
        f"changed_since ({CHANGED_DEVICES:,} changed)": (
            "/api/v1/devices/",
            {"changed_since": changed_since},
        ),
    }
    # A page deep in the list: follow a cursor 50 pages of 1000 in.
    url, params = "/api/v1/devices/", {"page_size": 1000}
    for _ in range(50):
        url = client.get(url, params).json()["next"]
        params = {}
    cases["page 51 by cursor (1000 per page)"] = (url, {})
    out = {}
    for name, (path, query) in cases.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path, query)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        out[name] = {
            "runs": runs,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "rows": len(response.json()["results"]),
        }
        log(json.dumps({name: out[name]}))
    return out


def run_child(case: str) -> dict[str, Any]:
    log(f"running {case} in a child process")
    result = subprocess.run(
        [sys.executable, __file__, "--child", case],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    log(json.dumps(figures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serials", type=int, default=100_000)
    parser.add_argument("--list-runs", type=int, default=40)
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="measure the first case right after the preparation (PostgreSQL's buffers cold)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    setup_django()
    from django.db import connection

    prepared = prepare(args.serials)
    connection.close()
    # prepare() leaves PostgreSQL's shared buffers holding what it touched (1,000 updated rows
    # in every index, a VACUUM, the serials' random pick): the first case would find the
    # devices' and keys' pages colder than every later one does (1,000 serials: 923 pages read
    # in, 26 ms, against 10 ms). One unmeasured JSON request first, reported apart, gives every
    # case the same start.
    warm_up = None if args.no_warm_up else run_child("api_json")
    downloads = [
        run_child(case) for case in ("api_json", "api_zip", "web_zip", "api_zip_search", "api_kem")
    ]
    report = {
        "database": DB_URL.rsplit("/", 1)[-1],
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "serials": prepared["serials"],
        "warm_up": warm_up,
        "downloads": downloads,
        "device_list": list_pages(args.list_runs, prepared["changed_since"]),
        "targets": {
            "api_keys_wall_ms": 1500,
            "api_keys_first_byte_ms": 200,
            "api_keys_peak_rss_mb": 150,
            "device_list_p95_ms": 50,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
