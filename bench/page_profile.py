"""Python CPU of the 25-row first page of My devices, with its cProfile.

    .venv/bin/python bench/page_profile.py [--runs 300] [--top 25] [--url /devices/]

Runs against the devices bench database (``BENCH_DATABASE_URL``; load it first with
``bench/devices_bench.py --load-only``), as the bench's Super User, through Django's test Client.
Prints JSON to stdout: the process CPU per request (p50, and the framework floor — a small
logged-in page with no device query — measured in the same run), the query count, and the
profile's top functions by own time; the cumulative profile goes to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devices_bench  # noqa: E402 - sets the bench environment before Django loads


def cpu_per_request(action, runs: int) -> list[float]:  # noqa: ANN001
    for _ in range(20):
        action()
    samples = []
    for _ in range(runs):
        started = time.process_time()
        action()
        samples.append((time.process_time() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--url", default="/devices/")
    parser.add_argument("--save", default="", help="write the raw profile here (pstats)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.urls import reverse

    client = devices_bench.logged_in_client(devices_bench.bench_user())
    client.post(reverse("devices:selection"), {"action": "clear"})

    def page():  # noqa: ANN202
        response = client.get(args.url)
        assert response.status_code == 200, response.status_code
        return response

    def floor():  # noqa: ANN202
        return client.get(reverse("devices:paste"))

    page()
    captured: list[str] = []

    def record(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        page()
    page_cpu = cpu_per_request(page, args.runs)
    floor_cpu = cpu_per_request(floor, args.runs)

    profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting for SQL
    profiler.enable()
    for _ in range(args.runs):
        page()
    profiler.disable()
    if args.save:
        profiler.dump_stats(args.save)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue(), file=sys.stderr)
    own = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],
        reverse=True,
    )[: args.top]
    report = {
        "url": args.url,
        "runs": args.runs,
        "python_cpu_ms": {
            # p10: the requests least slowed by other processes on a shared machine
            "p10": round(devices_bench.percentile(page_cpu, 10), 2),
            "p50": round(statistics.median(page_cpu), 2),
            "p95": round(devices_bench.percentile(page_cpu, 95), 2),
        },
        "framework_floor_cpu_ms_p50": round(statistics.median(floor_cpu), 2),
        "framework_floor_cpu_ms_p10": round(devices_bench.percentile(floor_cpu, 10), 2),
        "queries": len(captured),
        "query_sql": [sql[:200] for sql in captured],
        "top_own_time_ms_per_request": [
            {
                "function": f"{Path(fn[0]).name}:{fn[1]}({fn[2]})",
                "own_ms": round(data[2] / args.runs * 1000, 3),
                "calls_per_request": round(data[1] / args.runs, 1),
            }
            for fn, data in own
        ],
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
