"""Python CPU of the 25-row first page of My devices, with its cProfile.

    .venv/bin/python bench/page_profile.py [--runs 300] [--top 25] [--url /devices/]

Runs against the devices bench database (``BENCH_DATABASE_URL``; load it first with
``bench/devices_bench.py --load-only``), as the bench's Super User, through Django's test Client.
Prints JSON to stdout: the process CPU per request (p50, and the framework floor — a small
logged-in page with no device query — measured in the same run), the query count, the
profile's top functions by own time (cProfile, which inflates code of many small calls), and a
statistical CPU profile (``SIGPROF`` every 0.2 ms of process CPU, no per-call cost): each
function's share of the request's CPU including what it calls. The cumulative cProfile listing
goes to stderr.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import json
import os
import pstats
import signal
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


def _where(frame) -> str:  # noqa: ANN001
    path = frame.f_code.co_filename
    for prefix in sorted(sys.path, key=len, reverse=True):
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix) + 1 :]
            break
    return f"{path}:{frame.f_code.co_name}"


def cpu_sampled(action, runs: int, top: int) -> list[dict[str, object]]:  # noqa: ANN001
    """Each function's share of the CPU (itself and what it calls), sampled on process CPU
    time: the proportions are the real ones, unlike a tracing profiler's."""
    inclusive: collections.Counter[str] = collections.Counter()
    samples = 0

    def sample(signum, frame) -> None:  # noqa: ANN001
        nonlocal samples
        samples += 1
        seen = set()
        while frame is not None:
            seen.add(_where(frame))
            frame = frame.f_back
        inclusive.update(seen)

    previous = signal.signal(signal.SIGPROF, sample)
    started = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, 0.0002, 0.0002)
    try:
        for _ in range(runs):
            action()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    per_request = (time.process_time() - started) * 1000 / runs
    request = inclusive.most_common(1)[0][1] if inclusive else 1
    # Shares of one request: the outermost frames (this script, the test client) are 100 %.
    return [
        {
            "function": name,
            "cpu_ms": round(per_request * n / samples, 3),
            "share": round(n / request, 3),
        }
        for name, n in inclusive.most_common(top)
        if not name.startswith(("page_profile.py", "django/test/client.py"))
    ]


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

    import kamkeys.wsgi  # noqa: F401 - warmed and frozen as a gunicorn worker is (warm_up)

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
    sampled = cpu_sampled(page, args.runs, args.top * 3)

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
        "sampled_cpu_inclusive": sampled,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
