"""Bounded load on loopback: gunicorn with production settings on PostgreSQL + Redis.

Fills its own database with N devices of one distributor and one Super User (TOTP) per client,
starts gunicorn, then C clients — each from its own loopback address, as distinct users — log in
through the real login and two-factor pages and, for S seconds, mix My devices pages, column
searches, sorts and key downloads. Prints JSON: requests, p50/p95 per kind and overall, errors.

    .venv/bin/python bench/load.py --clients 50 --seconds 60 --devices 100000

``--mix floor``: the same clients ask only for a small logged-in page with no device query
(page_profile.py's framework floor): the requests per second the stack itself serves on this
machine, the ceiling the portal mix is read against.

Only 127.0.0.0/8 is ever contacted. The database is dropped afterwards unless --keep; --reuse
starts from a kept one of the same size (seeding 100,000 devices takes minutes).

Two-factor codes: allauth refuses a TOTP code already used within its period (per user, kept in
the cache). Every run therefore gives each user a fresh random secret (a reused database too)
and keeps its cache under a prefix of its own, so two runs, even at once on one Redis database,
never send the same user's same code; and a client waits for a fresh 30-second period when the
current one is about to end, and tries once more with the next period's code if a code is
refused (a request repeated after a lost connection would repeat its code).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from load_client import PASSWORD, Recorder, Window, client_loop, percentile

ROOT = Path(__file__).resolve().parents[1]

SETUP = r"""
import secrets, sys
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.hashers import make_password
from accounts.models import Membership, Organization, User
from devices.models import Device
from devices.device_codes import hash_device_code
from keyvault.services import store_device_keys_bulk

n_devices, n_users = int(sys.argv[1]), int(sys.argv[2])
if len(sys.argv) > 3 and sys.argv[3] == "reuse":  # kept database: fresh two-factor secrets only
    from allauth.mfa.models import Authenticator
    Authenticator.objects.filter(user__email__endswith="@bench.example").delete()
    for i in range(n_users):
        TOTP.activate(User.objects.get(email=f"load{i}@bench.example"), SECRETS[i])
    print("new two-factor secrets for", n_users, "users")
    sys.exit(0)
org = Organization.objects.create(name="Load Distributor", customer_number="L1", kind="distributor")
password = make_password(PASSWORD)
for i in range(n_users):
    user = User.objects.create(email=f"load{i}@bench.example", password=password)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    Membership.objects.create(user=user, organization=org, role="super_user")
    TOTP.activate(user, SECRETS[i])
types = ["MULTICAL 21", "flowIQ 2200", "MULTICAL 403", "MULTICAL 603", "OMNIPOWER"]
code_hash = hash_device_code("00000000", "00")
batch = 10_000
for start in range(0, n_devices, batch):
    devices = [
        Device(serial=f"{70_000_000 + i:08d}", device_code_hash=code_hash,
               device_type=types[i % 5], type_no="021A1B2C3", order_no=f"{4_000_000 + i // 500}",
               owner=org)
        for i in range(start, min(start + batch, n_devices))
    ]
    Device.objects.bulk_create(devices)
    store_device_keys_bulk((d, {"DEK": secrets.token_bytes(16)}) for d in devices)
print("seeded", n_devices, "devices and", n_users, "users")
"""


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def seeded_as_asked(psql_db: list[str], env: dict[str, str], devices: int, clients: int) -> bool:
    """Does the database hold the devices and users a run of this size seeds (--reuse)?"""
    result = subprocess.run(
        [
            *psql_db,
            "-tA",
            "-c",
            "SELECT (SELECT count(*) FROM devices_device), (SELECT count(*) FROM accounts_user)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return False
    counts = [int(v) for v in result.stdout.strip().split("|")]
    return counts == [devices, clients]


def run(cmd: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    if "capture_output" not in kw:
        kw.setdefault("stdout", sys.stderr)  # stdout carries only the JSON report
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--database", default="kk_bench_load")
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--port", type=int, default=8911)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--mix",
        choices=["portal", "floor"],
        default="portal",
        help="portal: pages, searches, sorts and ZIP downloads; floor: only a small logged-in "
        "page with no device query (the stack's own ceiling on this machine, same clients)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the database a --keep run left, if it holds as many devices and clients",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        parser.error("clients must be 1-200 and seconds 1-600 (the load is bounded)")

    work = Path(tempfile.mkdtemp(prefix="kamkeys-load-"))
    kek = work / "load.kek"
    # A fixed, bench-only KEK (loopback accounts of a throw-away database), so --reuse finds the
    # kept database's keys unwrappable.
    kek.write_text("1:" + base64.b64encode(b"\x07" * 32).decode() + "\n")
    kek.chmod(0o600)
    python = sys.executable
    env = {
        **os.environ,
        "KAMKEYS_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        # This run's own cache keys: allauth's used-code marks of another run (the same users'
        # ids in another database) can never refuse this run's codes.
        "KAMKEYS_CACHE_PREFIX": f"kk_load_{secrets.token_hex(4)}",
        "KAMKEYS_KEK_FILE": str(kek),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": "1",
        "STATIC_ROOT": str(work / "static"),
        "LOG_LEVEL": "WARNING",
        # One proxy of ours in front (the clients send X-Forwarded-Proto/-For as it would):
        # without it the production settings ignore X-Forwarded-Proto and answer every request
        # with a redirect to https.
        "KAMKEYS_TRUSTED_PROXY_COUNT": "1",
        "KAMKEYS_SITE_URL": f"https://127.0.0.1:{args.port}",
    }
    secrets_by_client = [base64.b32encode(os.urandom(20)).decode() for _ in range(args.clients)]
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "postgres"]
    psql_db = [*psql[:-1], args.database]
    reused = args.reuse and seeded_as_asked(psql_db, env, args.devices, args.clients)
    if not reused:
        run([*psql, "-c", f"DROP DATABASE IF EXISTS {args.database}"], env)
        run([*psql, "-c", f"CREATE DATABASE {args.database}"], env)
    run(["redis-cli", "-n", str(args.redis_db), "flushdb"], env, capture_output=True)
    gunicorn = None
    try:
        started = time.perf_counter()
        run([python, "manage.py", "migrate", "-v", "0"], env)
        run([python, "manage.py", "collectstatic", "--noinput", "-v", "0"], env)
        script = f"PASSWORD={PASSWORD!r}\nSECRETS={secrets_by_client!r}\n" + SETUP
        setup_file = work / "setup.py"
        setup_file.write_text(script)
        mode = "reuse" if reused else "seed"
        run(
            [
                python,
                "manage.py",
                "shell",
                "-c",
                f"import sys; sys.argv=['', '{args.devices}', '{args.clients}', '{mode}']; "
                f"exec(open({str(setup_file)!r}).read())",
            ],
            env,
        )
        if reused:  # the last run's sessions and selections go; devices and users stay
            run(
                [*psql_db, "-c", "DELETE FROM devices_deviceselection; DELETE FROM django_session"],
                env,
            )
        else:
            run([*psql_db, "-c", "VACUUM ANALYZE"], env)  # as autovacuum would, before the load
        setup_seconds = time.perf_counter() - started

        # The production server configuration (gthread workers, the redacting access log,
        # which goes nowhere here), with the worker and thread counts asked for.
        gunicorn = subprocess.Popen(
            [python, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"]
            + ["kamkeys.wsgi:application"],
            cwd=ROOT,
            env={
                **env,
                "GUNICORN_BIND": f"127.0.0.1:{args.port}",
                "GUNICORN_WORKERS": str(args.workers),
                "GUNICORN_THREADS": str(args.threads),
            },
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request(
                    "GET", "/healthz", headers={"X-Forwarded-Proto": "https"}
                )
                break
            except OSError:
                time.sleep(0.2)

        rec = Recorder()
        window = Window(args.clients, args.seconds)
        threads = [
            threading.Thread(
                target=client_loop,
                args=(i, args.port, secrets_by_client[i], args.devices, window, rec, args.mix),
            )
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        while window.ready.n_waiting < args.clients:  # every client logged in (or failed to)
            time.sleep(0.05)
        workers = workers_of(gunicorn.pid)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        server_before = sum(process_cpu(pid) for pid in [gunicorn.pid, *workers])
        machine_before = machine_busy()
        load_before = os.getloadavg()
        window.open()
        for thread in threads:
            thread.join()
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        server_after = sum(process_cpu(pid) for pid in [gunicorn.pid, *workers])
        machine_after = machine_busy()
        cpu = {
            "load_generator_cpu_seconds": round(
                self_after.ru_utime
                + self_after.ru_stime
                - self_before.ru_utime
                - self_before.ru_stime,
                1,
            ),
            "gunicorn_cpu_seconds": round(server_after - server_before, 1),
            "machine_busy_cpu_seconds": round(machine_after[0] - machine_before[0], 1),
            "machine_cpu_seconds_available": round(machine_after[1] - machine_before[1], 1),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        if not args.keep:
            subprocess.run([*psql, "-c", f"DROP DATABASE IF EXISTS {args.database}"], env=env)
        shutil.rmtree(work, ignore_errors=True)

    everything = [s for values in rec.samples.values() for s in values]
    report = {
        "clients": args.clients,
        "mix": args.mix,
        "seconds": args.seconds,
        "devices": args.devices,
        "gunicorn_workers": args.workers,
        "gunicorn_threads": args.threads,
        "setup_seconds": round(setup_seconds, 1),
        "reused_database": reused,
        "requests": len(everything),
        "requests_per_second": round(len(everything) / args.seconds, 1),
        "p50_ms": round(statistics.median(everything) * 1000, 1) if everything else None,
        "p95_ms": round(percentile(everything, 0.95) * 1000, 1) if everything else None,
        "errors": len(rec.errors),
        # Who used the two cores: this load generator (its threads parse every response), the
        # server's workers, and the whole machine (PostgreSQL, Redis, anybody else).
        "cpu": {
            **cpu,
            "gunicorn_cpu_ms_per_request": round(
                cpu["gunicorn_cpu_seconds"] * 1000 / max(1, len(everything)), 2
            ),
        },
        "error_examples": rec.errors[:5],
        "by_kind": {
            kind: {
                "requests": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            }
            for kind, values in sorted(rec.samples.items())
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
