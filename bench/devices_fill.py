"""Filling the devices bench database (``devices_bench.py --load-only``): 5,000,000 devices, one
distributor's 1,000,000, 100,000 keys under the bench KEK ring; built once, kept between runs.
Import it after ``devices_bench`` has set the environment (Django is imported inside)."""

from __future__ import annotations

import os
import sys
import time

TOTAL = 5_000_000
OTHER_ORGS = 200
TYPES = [
    "MULTICAL 21",
    "MULTICAL 403",
    "MULTICAL 603",
    "MULTICAL 303",
    "MULTICAL 302",
    "flowIQ 2200",
    "flowIQ 3100",
    "OMNIPOWER",
    "OMNIPOWER 3-phase",
    "READy Concentrator",
]
DOWNLOAD_TYPE = "MULTICAL 21"  # the distributor owns 100,000 of these; they get keys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    admin = psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if not exists.fetchone():
            log(f"creating database {db['NAME']}")
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')


def fill(reload: bool) -> None:
    """5,000,000 devices: every 5th owned by the bench distributor, the rest spread over 200
    organizations; serials are a permutation of 8-digit numbers; orders of 50 devices."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Organization
    from devices.models import Device

    call_command("migrate", "devices", verbosity=0)
    try:
        call_command("migrate", verbosity=0)
    except Exception as exc:  # another app's migration in flux: the devices schema is enough
        if reload or not Device.objects.exists():
            raise
        log(f"migrate failed ({type(exc).__name__}: {exc}); using the existing schema")
    if not reload and Device.objects.count() >= TOTAL:
        log("bench data present")
        return
    log("loading 5,000,000 devices (a few minutes)")
    index_migration = __import__(
        "devices.migrations.0003_search_indexes", fromlist=["INDEXES", "create"]
    )
    trigram_migration = __import__(
        "devices.migrations.0008_trigram_on_lowercase", fromlist=["INDEXES", "OLD_INDEXES"]
    )
    owner_trigram_migration = __import__(
        "devices.migrations.0012_owner_trigram_indexes", fromlist=["INDEXES", "forwards"]
    )
    built_later = trigram_migration.INDEXES + owner_trigram_migration.INDEXES
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for name, _definition in index_migration.INDEXES + built_later:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("TRUNCATE devices_device CASCADE")
    Organization.objects.filter(name__startswith="Bench ").delete()
    big = Organization.objects.create(
        name="Bench Distributor A/S", customer_number="B0000", kind="distributor"
    )
    others = Organization.objects.bulk_create(
        Organization(name=f"Bench Utility {i:03d}", customer_number=f"B{i:04d}", kind="customer")
        for i in range(1, OTHER_ORGS + 1)
    )
    other_ids = [o.pk for o in others]
    types_sql = "ARRAY[" + ",".join(f"'{t}'" for t in TYPES) + "]"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO devices_device (manufacturer, serial, device_code_hash, kind, device_type,
                type_no, config_no, consumption_type, production_year, order_no, owner_id,
                created_at)
            SELECT 'KAM',
                   lpad(((g::bigint * 7919) %% 100000000)::text, 8, '0'),
                   'unset',
                   CASE WHEN (g / 5) %% 10 = 9 THEN 'concentrator' ELSE 'meter' END,
                   ({types_sql})[((g / 5) %% 10) + 1],
                   '021A1B2C3', '3C001', 'Water', 2020 + g %% 6,
                   (5000000 + g / 50)::text,
                   CASE WHEN g %% 5 = 0 THEN %s
                        ELSE (%s::bigint[])[(g %% {OTHER_ORGS}) + 1] END,
                   now()
            FROM generate_series(1, {TOTAL}) AS g
            """,  # noqa: S608 - constants only
            [big.pk, other_ids],
        )
        log(f"  rows inserted in {time.perf_counter() - started:.0f}s; building indexes")
    # The indexes the migrations leave, built once on the loaded table (0003 without its
    # trigram indexes, which 0008 and then 0012 replace; 0004 redefines the covering serial
    # index; 0012 builds the (owner_id, lower(...)) trigram indexes).
    replaced = {name for name, _definition in trigram_migration.OLD_INDEXES}
    with connection.cursor() as cursor:
        for name, definition in index_migration.INDEXES:
            if name not in replaced:
                cursor.execute(f"CREATE INDEX {name} ON devices_device {definition}")
    with connection.schema_editor(atomic=False) as editor:
        __import__(
            "devices.migrations.0004_serial_index_includes_type", fromlist=["forwards"]
        ).forwards(None, editor)
        owner_trigram_migration.forwards(None, editor)
    log(f"  indexes built at {time.perf_counter() - started:.0f}s; writing 100,000 wrapped keys")
    add_keys(big.pk)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE devices_device")
        cursor.execute("VACUUM ANALYZE keyvault_devicekey")
    log(f"  done in {time.perf_counter() - started:.0f}s")


def add_keys(owner_id: int) -> None:
    from django.db import connection

    from devices.models import Device
    from keyvault.crypto import wrap_key
    from keyvault.kek import get_kek_source

    version, kek = get_kek_source().current()
    rows = list(
        Device.objects.filter(owner_id=owner_id, device_type=DOWNLOAD_TYPE).values_list(
            "pk", "serial"
        )
    )
    connection.ensure_connection()
    raw = connection.connection
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY keyvault_devicekey (device_id, name, wrapped, kek_version, updated_at) FROM STDIN"
        ) as copy,
    ):
        for pk, serial in rows:
            key = os.urandom(16)
            copy.write_row((pk, "DEK", wrap_key(kek, version, serial, "DEK", key), version, "now"))
    if not raw.autocommit:
        raw.commit()
