"""Benchmark of "My devices" at 5,000,000 devices, 1,000,000 of them owned by one distributor.

    .venv/bin/python bench/devices_bench.py [--runs 20] [--reload] [--skip-download]

Fills its own PostgreSQL database (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/kk_bench_devices) once, with INSERT ... SELECT generate_series,
then measures the server time of the real views through Django's test Client (middleware,
session, ORM, template rendering — everything but the network) for the distributor's Super User.

Beside each case it prints the time of the same SQL run bare: the device queries the view ran
(captured), executed again directly on the same connection. JSON goes to stdout, progress to
stderr. Not a timed test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kk_bench_devices")
os.environ["DATABASE_URL"] = DB_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")
os.environ.setdefault("DEBUG", "false")  # as in production: no per-query debug bookkeeping
os.environ.pop("REDIS_URL", None)  # locmem cache, eager tasks: nothing else to measure
# The bench database outlives checkouts (each has its own var/dev.kek): its 100,000 keys are
# wrapped under this fixed bench-only ring, never under a real or development KEK.
BENCH_KEK_RING = "1:" + base64.b64encode(b"\x01" * 32).decode()
os.environ["KAMKEYS_KEKS"] = BENCH_KEK_RING
os.environ["KAMKEYS_KEK_FILE"] = ""

OWNED = 1_000_000  # of the TOTAL devices (devices_fill), the bench distributor's
from bench_plans import bare_time, plans  # noqa: E402 - bench/ is on sys.path
from devices_fill import DOWNLOAD_TYPE, TOTAL, TYPES, ensure_database, fill  # noqa: E402

TARGET_P95_MS = 50.0
# Cases that open a page by its number alone (no Next / Previous cursor): the page is an OFFSET
# and may take longer (issue 17 §2), which the page's help says (id="paging-help", checked
# below). Over the target they are reported apart from the failures, never as ok.
DIRECT_JUMPS = {
    "deep page (OFFSET 900,000)",
    "deep page sorted by TYPE (OFFSET 900,000)",
    "last page",
    "search TYPE 'multical' page 10,000",
}
JUMP_ALLOWED = (
    "a direct jump to page N pays the OFFSET (issue 17 §2 allows it); the page's help says so"
)
ONLY = ""  # --only
DOWNLOAD_RUNS = 3  # each format, after a warm-up as a gunicorn worker's (--download-runs)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_user() -> Any:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.models import Membership, Organization, User

    big = Organization.objects.get(name="Bench Distributor A/S")
    user, _ = User.objects.get_or_create(email="bench.super@distributor.example")
    Membership.objects.get_or_create(
        user=user, organization=big, defaults={"role": Membership.Role.SUPER_USER}
    )
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, generate_totp_secret())
    return user


def logged_in_client(user: Any) -> Any:
    """A test Client logged in with a fresh password and TOTP authentication."""
    from django.test import Client

    from tests.factories import login

    return login(Client(), user)


def shown(response: Any, element_id: str) -> int:
    """A count as the page shows it, e.g. <strong id="search-count">1,000,000</strong>."""
    match = re.search(rf'id="{element_id}">([\d,]+)<', response.content.decode())
    assert match, f"no {element_id} on the page"
    return int(match.group(1).replace(",", ""))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(name: str, action: Any, runs: int, check: Any = None) -> dict[str, Any]:
    """A case's figures. Django's cache is emptied before each run (outside the timing) except
    for Next / Previous: a search is typed for the first time, but a Next link is followed from
    the page before, whose visit left a large search's count in the cache (devices.counts)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    keyset = "(keyset)" in name
    for _ in range(2):  # warm PostgreSQL's and the OS's caches
        action()
    server: list[float] = []
    cpu: list[float] = []
    bare: list[float] = []
    query_count = 0
    for _ in range(runs):
        if not keyset:
            cache.clear()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            cpu_started = time.process_time()
            response = action()
            cpu.append((time.process_time() - cpu_started) * 1000)
            server.append((time.perf_counter() - started) * 1000)
        if check is not None:
            check(response)
        query_count = len(captured.captured_queries)
        bare.append(bare_time(captured.captured_queries))
    result = {
        "case": name,
        # CPU time of this process (Django + psycopg) per request: what the machine's load
        # does not inflate, unlike the wall-clock figures beside it.
        "python_cpu_ms_p50": round(statistics.median(cpu), 1),
        "server_ms": {
            "p50": round(statistics.median(server), 1),
            "p95": round(percentile(server, 95), 1),
        },
        "bare_sql_ms": {
            "p50": round(statistics.median(bare), 1),
            "p95": round(percentile(bare, 95), 1),
        },
        "queries": query_count,
    }
    result["ratio_p50"] = round(
        result["server_ms"]["p50"] / max(result["bare_sql_ms"]["p50"], 0.1), 2
    )
    result["plan"] = plans(captured.captured_queries)
    result["ok"] = (
        result["server_ms"]["p95"] <= TARGET_P95_MS and not result["plan"]["whole_range_scan"]
    )
    if name in DIRECT_JUMPS:
        result["direct_jump"] = True
        if not result["ok"]:
            result["allowed_because"] = JUMP_ALLOWED
    log(json.dumps(result))
    return result


def random_substrings(seed: int) -> list[tuple[str, str, str]]:
    """SERIAL # and ORDER # substrings of 3-8 digits cut at random from numbers the bench
    distributor's devices carry (so each matches something), reproducible from the seed."""
    import random

    rng = random.Random(seed)
    out = []
    for label, field, lengths in (
        ("SERIAL #", "serial", (3, 4, 5, 6, 8)),
        ("ORDER #", "order", (3, 4, 5, 7)),
    ):
        for length in lengths:
            g = rng.randrange(5, TOTAL + 1, 5)  # a device of the bench distributor
            number = (
                f"{(g * 7919) % 100_000_000:08d}" if field == "serial" else str(5_000_000 + g // 50)
            )
            start = rng.randrange(0, len(number) - length + 1)
            out.append((label, field, number[start : start + length]))
    return out


def link(client: Any, url: str, params: dict[str, Any], rel: str) -> dict[str, str]:
    """The query of a page's Next (rel=next) or Previous (rel=prev) link."""
    from html import unescape
    from urllib.parse import parse_qs, urlsplit

    response = client.get(url, params)
    match = re.search(rf'<a href="([^"]*)" rel="{rel}">', response.content.decode())
    assert match, f"no {rel} link on {params}"
    query = parse_qs(urlsplit(unescape(match.group(1))).query)
    assert "after" in query or "before" in query, query
    return {key: values[-1] for key, values in query.items()}


def run(runs: int, skip_download: bool, seed: int) -> dict[str, Any]:
    from django.urls import reverse

    user = bench_user()
    client = logged_in_client(user)
    url = reverse("devices:list")

    def ok(response: Any) -> None:
        assert response.status_code == 200, response.status_code

    def jump_explained(response: Any) -> None:
        ok(response)
        assert 'id="paging-help"' in response.content.decode(), "no paging help on a deep page"

    def page(params: dict[str, Any]) -> Any:
        def get() -> Any:
            client.post(reverse("devices:selection"), {"action": "clear"})
            return client.get(url, params)

        return get

    def get(params: dict[str, Any]) -> Any:
        return lambda: client.get(url, params)

    client.post(reverse("devices:selection"), {"action": "clear"})
    first = client.get(url)
    assert shown(first, "search-count") == OWNED, first.status_code

    cases: list[tuple[str, Any]] = [
        ("first page with count", get({})),
        ("page size 500", get({"per_page": 500})),
        ("search ORDER # substring '0123'", get({"order": "0123"})),
        ("search ORDER # prefix '50123*'", get({"order": "50123*"})),
        # Matches cluster by order number: '5032' is 10,200 devices, 10,000 of them in orders
        # 5032000-5032999, so a walk of the order index from the other end reads 250,000 entries.
        (
            "search ORDER # substring '5032' sorted by ORDER # descending",
            get({"order": "5032", "sort": "-order_no"}),
        ),
        (
            "search ORDER # substring '501' sorted by ORDER # descending",
            get({"order": "501", "sort": "-order_no"}),
        ),
        (
            "search ORDER # substring '5032' sorted by TYPE",
            get({"order": "5032", "sort": "device_type"}),
        ),
        ("search SERIAL # substring '1468'", get({"serial": "1468"})),
        ("search SERIAL # two digits '63' (matches the beginning)", get({"serial": "63"})),
        ("search SERIAL # prefix '630*'", get({"serial": "630*"})),
        ("search SERIAL # full '63001468'", get({"serial": "63001468"})),
        ("search TYPE 'multical'", get({"type": "multical"})),
        ("search TYPE 'flowiq 2200'", get({"type": "flowiq 2200"})),
        ("search TRANSFERRED TO 'bench distributor'", get({"owner": "bench distributor"})),
        ("search TYPE + SERIAL prefix", get({"type": "multical", "serial": "12*"})),
        ("sort ORDER #", get({"sort": "order_no"})),
        ("sort ORDER # descending", get({"sort": "-order_no"})),
        ("sort SERIAL # descending", get({"sort": "-serial"})),
        ("sort TYPE", get({"sort": "device_type"})),
        ("sort TYPE descending", get({"sort": "-device_type"})),
        ("sort TRANSFERRED TO", get({"sort": "owner"})),
        ("deep page (OFFSET 900,000)", get({"page": 36001})),
        ("deep page sorted by TYPE (OFFSET 900,000)", get({"page": 36001, "sort": "device_type"})),
        ("last page", get({"page": 40000})),
        ("search TYPE 'multical' page 10,000", get({"type": "multical", "page": 10000})),
    ]
    cases += [
        (f"search {label} substring '{term}' ({len(term)} digits, random)", get({field: term}))
        for label, field, term in random_substrings(seed)
    ]
    # Next / Previous (keyset): the link as the page before it wrote it, followed.
    for name, params, rel in [
        ("next page after page 36,000 (keyset)", {"page": 36000}, "next"),
        ("previous page before page 36,002 (keyset)", {"page": 36002}, "prev"),
        ("next page after page 20,000 of 40,000 (keyset)", {"page": 20000}, "next"),
        (
            "next page after page 20,000 sorted by TYPE descending (keyset)",
            {"page": 20000, "sort": "-device_type"},
            "next",
        ),
        (
            "next page after page 10,000 of TYPE 'multical' (keyset)",
            {"page": 10000, "type": "multical"},
            "next",
        ),
        (
            "next page after page 100 of ORDER # substring '501' (keyset)",
            {"page": 100, "order": "501"},
            "next",
        ),
        (
            "next page after page 100 of SERIAL # '146' (keyset)",
            {"page": 100, "serial": "146"},
            "next",
        ),
        (
            "next page after page 10 of SERIAL # '1468' (keyset)",
            {"page": 10, "serial": "1468"},
            "next",
        ),
    ]:
        cases.append((name, get(link(client, url, params, rel))))
    floor = measure(
        "framework floor: a small logged-in page (Paste serial numbers), no device query",
        lambda: client.get(reverse("devices:paste")),
        runs,
        ok,
    )
    results = [floor] + [
        measure(name, action, runs, jump_explained if name in DIRECT_JUMPS else ok)
        for name, action in cases
        if ONLY in name
    ]

    def select_all() -> Any:
        client.post(reverse("devices:selection"), {"action": "clear"})
        return client.post(
            reverse("devices:selection"), {"action": "select_search", "type": "multical"}
        )

    multical = OWNED * sum("MULTICAL" in t for t in TYPES) // len(TYPES)  # 500,000

    def all_multical_selected(response: Any) -> None:
        ok(response)
        assert shown(response, "selected-count") == multical, shown(response, "selected-count")

    def some_selected(response: Any) -> None:
        ok(response)
        assert shown(response, "selected-count") > 0

    selected_cases = [
        (f"select all in search (TYPE 'multical', {multical:,})", select_all, None),
        (f"first page with {multical:,} selected", get({}), all_multical_selected),
        (
            f"search page with {multical:,} selected",
            get({"type": "multical"}),
            all_multical_selected,
        ),
    ]
    for name, action, check in selected_cases:
        if ONLY in name:
            results.append(measure(name, action, runs, check))
    # A selected substring search is counted again beside every page (cache emptied per run).
    name = "first page with SERIAL # '146' selected (a substring search, about 6,000)"
    if ONLY in name:
        client.post(reverse("devices:selection"), {"action": "clear"})
        client.post(reverse("devices:selection"), {"action": "select_search", "serial": "146"})
        results.append(measure(name, get({}), runs, some_selected))
    client.post(reverse("devices:selection"), {"action": "clear"})

    download: dict[str, Any] = {}
    if not skip_download:
        download = measure_download(client)
    floor_p50 = floor["server_ms"]["p50"]
    for result in results[1:]:
        result["server_minus_floor_p50"] = round(result["server_ms"]["p50"] - floor_p50, 1)
    return {
        "devices": TOTAL,
        "owned_by_distributor": OWNED,
        "runs_per_case": runs,
        "target": f"p95 <= {TARGET_P95_MS:g} ms and no scan of the owner's whole range",
        "direct_jumps": JUMP_ALLOWED,
        "seed": seed,
        "cases_failed": [
            r["case"] for r in results if not r.get("ok", True) and "allowed_because" not in r
        ],
        # Over the target, but only as a direct jump to a page number (see JUMP_ALLOWED).
        "direct_jumps_over_target": {
            r["case"]: r["server_ms"]["p95"] for r in results if "allowed_because" in r
        },
        "load_average_at_end": os.getloadavg(),
        "cases": results,
        "download": download,
    }


def measure_download(client: Any, runs: int | None = None) -> dict[str, Any]:
    """Select the 100,000 devices of one type (a stored search) and stream both formats,
    ``runs`` times each; first byte and total are reported per run and as the median.

    The process was warmed as a gunicorn worker warms itself before its first request
    (``kamkeys.wsgi.warm_up``: the URLconf's views, zxcvbn's dictionaries, the catalogs), so the
    figures are those of a running server, not of a module import (zxcvbn alone is ~100 ms)."""
    from django.db import connection
    from django.urls import reverse

    runs = runs or DOWNLOAD_RUNS

    client.post(reverse("devices:selection"), {"action": "clear"})
    client.post(
        reverse("devices:selection"), {"action": "select_search", "type": DOWNLOAD_TYPE.lower()}
    )
    out: dict[str, Any] = {}
    password = "bench Correct horse 42 battery!"
    for fmt, pw in (("zip", password), ("kem", "BenchKem-2026!")):
        first_bytes: list[float] = []
        totals: list[float] = []
        size = 0
        for _run in range(runs):
            started = time.perf_counter()
            response = client.post(
                reverse("keyfiles:download"),
                {"format": fmt, "password": pw, "password_repeat": pw},
            )
            assert response.status_code == 200, response.status_code
            first_byte = None
            size = 0
            for chunk in response.streaming_content:
                if first_byte is None:
                    first_byte = (time.perf_counter() - started) * 1000
                size += len(chunk)
            totals.append((time.perf_counter() - started) * 1000)
            first_bytes.append(first_byte or 0)
        with connection.cursor() as cursor:
            bare_started = time.perf_counter()
            cursor.execute(
                "SELECT d.id, d.serial, k.name, k.wrapped, k.kek_version FROM devices_device d "
                "JOIN keyvault_devicekey k ON k.device_id = d.id "
                "WHERE d.owner_id = (SELECT id FROM accounts_organization "
                "WHERE name = 'Bench Distributor A/S') AND d.device_type = %s",
                [DOWNLOAD_TYPE],
            )
            fetched = len(cursor.fetchall())
            bare = (time.perf_counter() - bare_started) * 1000
        out[fmt] = {
            "devices": 100_000,
            "keys_fetched_bare": fetched,
            "runs": runs,
            "first_byte_ms": round(statistics.median(first_bytes), 1),
            "total_ms": round(statistics.median(totals), 1),
            "first_byte_ms_each": [round(v, 1) for v in first_bytes],
            "total_ms_each": [round(v, 1) for v in totals],
            "bytes": size,
            "bare_sql_fetch_keys_ms": round(bare, 1),
        }
        log(json.dumps({fmt: out[fmt]}))
    client.post(reverse("devices:selection"), {"action": "clear"})
    return out


def main() -> None:
    global ONLY, DOWNLOAD_RUNS  # noqa: PLW0603 - the script's options
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reload", action="store_true", help="refill the bench database")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--skip-download", action="store_true")
    parser.add_argument(
        "--download-only", action="store_true", help="only the 100,000-key download, both formats"
    )
    parser.add_argument("--download-runs", type=int, default=DOWNLOAD_RUNS)
    parser.add_argument("--seed", type=int, default=17, help="seed of the random substrings")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    ONLY = args.only
    DOWNLOAD_RUNS = args.download_runs

    import django

    django.setup()
    ensure_database()
    fill(args.reload)
    if args.load_only:
        return
    # From here the process is a gunicorn worker: warmed as each one warms itself before its first
    # request (kamkeys.wsgi.warm_up), with what it loaded frozen out of the garbage collector's
    # full collections (before 2026-12-08 one of those, ~50 ms, landed in every few 500-row pages).
    import kamkeys.wsgi  # noqa: F401

    load_before = os.getloadavg()
    if args.download_only:
        download = measure_download(logged_in_client(bench_user()), args.download_runs)
        print(
            json.dumps(
                {
                    "load_average_at_start": load_before,
                    "download": download,
                    "load_average_at_end": os.getloadavg(),
                },
                indent=2,
            )
        )
        return
    report = run(args.runs, args.skip_download or bool(args.only), args.seed)
    report["load_average_at_start"] = load_before
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
