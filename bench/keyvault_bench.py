"""Benchmark of key custody on PostgreSQL: import 1,000,000 rows, export 100,000 keys as ZIP and
as KEM, rotate 1,000,000 keys.

    .venv/bin/python bench/keyvault_bench.py [--rows 1000000] [--export 100000,1000000]
        [--export-runs 3] [--keep]

Creates its own database (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/kk_bench_keyvault), migrates it, and runs every case in a
fresh child process so each peak RSS is that case's own (``ru_maxrss`` of the child; the RSS of
a bare ``django.setup()`` is printed beside it). Beside the figures it prints the library floors
measured in the same run, all data in memory: HKDF + AES-KW unwrap of the export's keys, a pyzipper
AES-256 zip of what the file holds for that many keys (keys.csv and keys.json, deflated at the
level keyfiles.downloads uses), and building plus AES-CBC-encrypting a KEM XML of that
many meters. JSON goes to stdout, progress to stderr. The database is dropped at the end unless
--keep. Not a timed test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kk_bench_keyvault"
)
KEK_V1 = base64.b64encode(b"\x01" * 32).decode()
KEK_V2 = base64.b64encode(b"\x02" * 32).decode()
OWNER = "Bench Distributor"
EXPORT_OWNER = "Bench Export Customer"
EXPORT_RUNS = 3  # each export in a fresh process; the median is reported
PASSWORDS = {"zip": "quartz meadow lantern 1987", "kem": "Bench-Kem-2026"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env(keks: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=DB_URL,
        DJANGO_SETTINGS_MODULE="kamkeys.settings",
        KAMKEYS_KEKS=keks,
        KAMKEYS_KEK_FILE="",
        DEBUG="false",  # as in production: no query log kept in memory
    )
    return env


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the parent: database, data file, children ----------------------------------------------------


def admin_connection() -> Any:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(DB_URL)
    name = params.pop("dbname")
    return psycopg.connect(make_conninfo(**params, dbname="postgres"), autocommit=True), name


def create_database() -> None:
    connection, name = admin_connection()
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=child_env(f"1:{KEK_V1}"),
        check=True,
    )


def drop_database() -> None:
    connection, name = admin_connection()
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_factory_csv(path: Path, rows: int) -> None:
    """A factory file: serial, device code, type, DEK and a few optional columns."""
    types = [("MULTICAL 21", "021A1B2C3", "Water"), ("MULTICAL 403", "403T0001", "Heat")]
    with path.open("w", encoding="ascii", newline="") as handle:
        handle.write("serial,device_code,type,dek,order_no,type_no,config_no,consumption_type\n")
        lines = []
        for index in range(rows):
            name, type_no, consumption = types[index % 2]
            lines.append(
                f"{10_000_000 + index:08d},{index % 100:02d},{name},{os.urandom(16).hex()},"
                f"{6_000_000 + index // 1000},{type_no},3C001,{consumption}\n"
            )
            if len(lines) >= 50_000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)


def run_child(case: str, keks: str, *args: str) -> dict[str, Any]:
    log(f"running {case} ... (load average {os.getloadavg()[0]:.2f})")
    result = subprocess.run(
        [sys.executable, __file__, "--child", case, *args],
        cwd=ROOT,
        env=child_env(keks),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log(result.stderr[-4000:])
        raise SystemExit(f"{case} failed")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    log(f"  {case}: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--export",
        default="100000",
        help="devices per export, or several side by side: 100000,1000000",
    )
    parser.add_argument("--export-runs", type=int, default=EXPORT_RUNS)
    parser.add_argument("--skip-rotate", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(CHILD_CASES[options.child](*options.child_args)))
        return

    ring_v1 = f"1:{KEK_V1}"
    ring_v2 = f"1:{KEK_V1},2:{KEK_V2}"
    report: dict[str, Any] = {
        "database": "PostgreSQL " + DB_URL.rsplit("/", 1)[-1],
        "cpus": os.cpu_count(),
        "rows": options.rows,
        "export_sizes": options.export,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="kk-bench-") as folder:
            source = Path(folder) / "factory.csv"
            started = time.perf_counter()
            write_factory_csv(source, options.rows)
            log(f"wrote {options.rows:,} rows in {time.perf_counter() - started:.1f} s")
            report["baseline"] = run_child("baseline", ring_v1)
            report["import"] = run_child("import", ring_v1, str(source))
            sizes = sorted({int(size) for size in options.export.split(",")})
            for size in sizes:
                # The first `size` devices move to the export customer (the larger sizes
                # include the smaller): the exports of each size side by side, with the
                # library floors for that many keys measured in the same run.
                run_child("prepare_export", ring_v1, str(size))
                figures: dict[str, Any] = {}
                for case in ("export", "export_cli", "web_download"):
                    for fmt in ("zip", "kem"):
                        target = Path(folder) / f"{case}.{fmt}.zip"
                        runs = [
                            run_child(case, ring_v1, fmt, str(target))
                            for _ in range(options.export_runs)
                        ]
                        walls = sorted(run["wall_s"] for run in runs)
                        figures[f"{case}_{fmt}"] = {
                            **runs[0],
                            "wall_s": statistics.median(walls),  # each run a fresh process
                            "wall_s_runs": walls,
                            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
                        }
                floors = run_child("floors", ring_v1, str(size))
                floors["note"] = "libraries alone, all data in memory, same run"
                for fmt, floor in (
                    ("zip", floors["hkdf_aeskw_unwrap_s"] + floors["pyzipper_aes256_csv_json_s"]),
                    ("kem", floors["hkdf_aeskw_unwrap_s"] + floors["kem_build_encrypt_s"]),
                ):
                    for case in ("export", "export_cli", "web_download"):
                        entry = figures[f"{case}_{fmt}"]
                        entry["floor_s"] = round(floor, 3)
                        entry["ratio_to_floor"] = round(entry["wall_s"] / max(floor, 0.001), 2)
                figures["floors"] = floors
                report[f"export_{size}"] = figures
            if not options.skip_rotate:
                report["rotate"] = run_child("rotate", ring_v2)
            report["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    finally:
        if options.keep:
            log(f"kept {DB_URL}")
        else:
            drop_database()
            log("dropped the benchmark database")
    print(json.dumps(report, indent=2))


# --- the children: one case each ------------------------------------------------------------------


def setup_django() -> None:
    import django

    django.setup()


def case_baseline() -> dict[str, Any]:
    setup_django()
    return {"peak_rss_mb": round(peak_rss_mb(), 1)}


def case_import(path: str) -> dict[str, Any]:
    setup_django()
    from accounts.models import Organization
    from audit.context import AuditContext
    from keyfiles.importer import import_keys

    owner = Organization.objects.create(name=OWNER, kind="distributor", customer_number="B1")
    started = time.perf_counter()
    with open(path, "rb") as handle:
        report = import_keys(handle, owner=owner, fmt="csv", context=AuditContext.command())
    wall = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(report.summary() + " " + str(report.problems[:5]))
    return {
        "rows": report.rows,
        "devices": report.imported,
        "keys": report.keys,
        "wall_s": round(wall, 2),
        "phases_s": report.seconds,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "file_mb": round(os.path.getsize(path) / 1e6, 1),
    }


def case_prepare_export(count: str) -> dict[str, Any]:
    setup_django()
    from django.db import connection

    from accounts.models import Organization

    customer, _ = Organization.objects.get_or_create(name=EXPORT_OWNER, customer_number="B2")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_device SET owner_id = %s WHERE id IN "
            "(SELECT id FROM devices_device ORDER BY id LIMIT %s)",
            [customer.pk, int(count)],
        )
        # Steady state, as autovacuum would leave it: no dead row versions from the UPDATE, and
        # no autovacuum of the freshly imported tables running beside the exports.
        cursor.execute("VACUUM ANALYZE devices_device")
        cursor.execute("VACUUM ANALYZE keyvault_devicekey")
    return {}


def case_export(fmt: str, target: str) -> dict[str, Any]:
    setup_django()
    from django.db.models import Q

    from audit.context import AuditContext
    from devices.access import OPERATOR
    from keyfiles.downloads import build_download, write_download

    started = time.perf_counter()
    download = build_download(
        which=Q(owner__name=EXPORT_OWNER),
        fmt=fmt,
        password=PASSWORDS[fmt],
        context=AuditContext.command(),
        operator=OPERATOR,
        action="export",
    )
    size = write_download(download, target)
    wall = time.perf_counter() - started
    return {
        "devices": download.count,
        "file_mb": round(size / 1e6, 2),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def case_export_cli(fmt: str, target: str) -> dict[str, Any]:
    """``manage.py export_keys --all`` when the export customer holds every device, else
    ``--owner`` of the export customer (the same devices as the other cases)."""
    setup_django()
    from django.core.management import call_command

    from devices.models import Device

    devices = Device.objects.filter(owner__name=EXPORT_OWNER).count()
    which = "--all" if devices == Device.objects.count() else "--owner=B2"

    with tempfile.NamedTemporaryFile("w", suffix=".txt") as password_file:
        password_file.write(PASSWORDS[fmt])
        password_file.flush()
        started = time.perf_counter()
        call_command(
            "export_keys",
            which,
            f"--format={fmt}",
            f"--password-file={password_file.name}",
            f"--output={target}",
            stdout=io.StringIO(),
        )
        wall = time.perf_counter() - started
    return {
        "devices": devices,
        "command": f"export_keys {which} --format={fmt}",
        "file_mb": round(os.path.getsize(target) / 1e6, 2),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def case_web_download(fmt: str, target: str) -> dict[str, Any]:
    """The Download file page for a Super User of the export customer who selected all of its
    devices (one stored search), through Django's test Client: first byte and total."""
    setup_django()
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Membership, Organization, User
    from tests.factories import login

    customer = Organization.objects.get(name=EXPORT_OWNER)
    user, created = User.objects.get_or_create(email="bench.export@customer.example")
    if created:
        Membership.objects.create(user=user, organization=customer, role=Membership.Role.SUPER_USER)
        TOTP.activate(user, generate_totp_secret())
    client = login(Client(), user)
    client.post(reverse("devices:selection"), {"action": "clear"})
    client.post(reverse("devices:selection"), {"action": "select_search", "owner": EXPORT_OWNER})
    password = PASSWORDS[fmt]
    started = time.perf_counter()
    response = client.post(
        reverse("keyfiles:download"),
        {"format": fmt, "password": password, "password_repeat": password},
    )
    if response.status_code != 200:
        raise SystemExit(f"download answered {response.status_code}")
    first_byte = None
    size = 0
    with open(target, "wb") as handle:
        for chunk in response.streaming_content:
            if first_byte is None:
                first_byte = time.perf_counter() - started
            handle.write(chunk)
            size += len(chunk)
    wall = time.perf_counter() - started
    return {
        "devices": customer.devices.count(),
        "file_mb": round(size / 1e6, 2),
        "first_byte_ms": round((first_byte or 0) * 1000, 1),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def case_rotate() -> dict[str, Any]:
    setup_django()
    from keyvault.rotation import rotate_keys

    started = time.perf_counter()
    result = rotate_keys(batch_size=10_000)
    wall = time.perf_counter() - started
    return {
        "rewrapped": result.rewrapped,
        "failed": result.failed,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def case_floors(count_text: str) -> dict[str, Any]:
    """The libraries alone, data in memory."""
    import pyzipper
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

    count = int(count_text)
    kek = b"\x01" * 32
    keys = [os.urandom(16) for _ in range(count)]

    def derive(index: int) -> bytes:
        return HKDF(hashes.SHA256(), 32, None, b"serial%08d|DEK|1" % index).derive(kek)

    wrapped = [aes_key_wrap(derive(i), key) for i, key in enumerate(keys)]
    started = time.perf_counter()
    for index, blob in enumerate(wrapped):
        aes_key_unwrap(derive(index), blob)
    unwrap_s = time.perf_counter() - started

    rows = "".join(
        f"{10_000_000 + i:08d},MULTICAL 21,6000000,DEK,{key.hex().upper()}\r\n"
        for i, key in enumerate(keys)
    ).encode()
    # keys.json as the download writes it: a type's members, the order number, the keys.
    objects = ",".join(
        f'\n {{"serial": "{10_000_000 + i:08d}", "manufacturer": "Kamstrup", "kind": "meter", '
        '"type": "MULTICAL 21", "type_no": "021A1B2C3", "config_no": "3C001", '
        f'"consumption_type": "water", "order_no": "{6_000_000 + i // 500}", '
        f'"keys": {{"DEK": "{key.hex().upper()}"}}}}'
        for i, key in enumerate(keys)
    )
    document = f"[{objects}\n]\n".encode()
    del objects
    started = time.perf_counter()
    buffer = io.BytesIO()
    # The download's two members, deflated at its level (keyfiles.downloads: compresslevel=1).
    with pyzipper.AESZipFile(
        buffer, "w", compression=pyzipper.ZIP_DEFLATED, compresslevel=1, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(PASSWORDS["zip"].encode())
        archive.writestr("keys.csv", rows)
        archive.writestr("keys.json", document)
    zip_s = time.perf_counter() - started
    del document

    started = time.perf_counter()
    xml = (
        "<MetersInOrder>"
        + "".join(
            f"<Meter><MeterName>MC21</MeterName><ConsumptionType>Water</ConsumptionType>"
            f"<MeterNo>{10_000_000 + i:08d}</MeterNo><SerialNo>{10_000_000 + i:08d}</SerialNo>"
            f"<VendorId>KAM</VendorId><ConfigNo>3C001</ConfigNo><TypeNo>021A1B2C3</TypeNo>"
            f"<DEK>{key.hex().upper()}</DEK></Meter>"
            for i, key in enumerate(keys)
        )
        + "</MetersInOrder>"
    )
    password = PASSWORDS["kem"].encode().ljust(16, b"\0")
    padder = padding.PKCS7(128).padder()
    plain = padder.update(xml.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(password), modes.CBC(password)).encryptor()
    base64.b64encode(encryptor.update(plain) + encryptor.finalize())
    kem_s = time.perf_counter() - started
    return {
        "hkdf_aeskw_unwrap_s": round(unwrap_s, 3),
        "pyzipper_aes256_csv_json_s": round(zip_s, 3),
        "kem_build_encrypt_s": round(kem_s, 3),
        "keys": count,
    }


CHILD_CASES = {
    "baseline": case_baseline,
    "import": case_import,
    "prepare_export": case_prepare_export,
    "export": case_export,
    "export_cli": case_export_cli,
    "web_download": case_web_download,
    "rotate": case_rotate,
    "floors": case_floors,
}


if __name__ == "__main__":
    main()
