"""Replaying the device queries a page ran: bare timings and EXPLAIN ANALYZE of each, with the
planner settings it ran under (``devices.search.planned`` runs ``SET LOCAL ...`` and then one
device query in its own transaction). Used by devices_bench.py."""

from __future__ import annotations

import json
import time
from typing import Any

# A scan that reads this many of the bench owner's rows or more reads "the owner's whole range".
WHOLE_RANGE_ROWS = 500_000


def _replayed(queries: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    """The captured device-table reads, each with the planner settings it ran under: the app
    runs ``SET LOCAL ...`` and then one device query in its own transaction
    (``devices.search.planned``)."""
    steps: list[tuple[str | None, str]] = []
    pending: str | None = None
    for query in queries:
        sql = query["sql"]
        head = sql.lstrip().upper()
        if head.startswith("SET LOCAL"):
            pending = sql
            continue
        if "devices_device" not in sql or head.startswith(
            ("INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE", "ROLLBACK")
        ):
            continue
        steps.append((pending, sql))
        pending = None
    return steps


def _run_step(cursor: Any, settings_sql: str | None, sql: str) -> list[Any]:
    if settings_sql:
        cursor.execute("BEGIN")
        cursor.execute(settings_sql)
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        if settings_sql:
            cursor.execute("ROLLBACK")


def bare_time(queries: list[dict[str, Any]]) -> float:
    """Run the captured device-table queries again, bare, on the same connection (ms)."""
    from django.db import connection

    total = 0.0
    with connection.cursor() as cursor:
        for settings_sql, sql in _replayed(queries):
            started = time.perf_counter()
            _run_step(cursor, settings_sql, sql)
            total += (time.perf_counter() - started) * 1000
    return total


def _scans(node: dict[str, Any], device_indexes: set[str]) -> list[dict[str, Any]]:
    """Every scan of the device table and of its indexes in the plan, with the rows it read. A
    Bitmap Index Scan names no table: it counts when its index is one of ``device_indexes``."""
    found = []
    if "Scan" in node.get("Node Type", "") and node.get("Relation Name") == "devices_device":
        loops = node.get("Actual Loops", 1)
        read = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        ) * loops
        found.append(
            {"node": node["Node Type"], "index": node.get("Index Name"), "rows_read": int(read)}
        )
    if node.get("Node Type") == "Bitmap Index Scan" and node["Index Name"] in device_indexes:
        found.append(
            {
                "node": node["Node Type"],
                "index": node["Index Name"],
                "rows_read": int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1)),
            }
        )
    for child in node.get("Plans", []):
        found.extend(_scans(child, device_indexes))
    return found


def plans(queries: list[dict[str, Any]]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of each device query as the view ran it: its slowest query's scan nodes,
    and whether any scan read half or more of the owner's range (or the whole table)."""
    from django.db import connection

    explained = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'devices_device'")
        device_indexes = {name for (name,) in cursor.fetchall()}
        for settings_sql, sql in _replayed(queries):
            (row,) = _run_step(cursor, settings_sql, f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
            root = plan[0]["Plan"]
            explained.append(
                (root.get("Actual Total Time", 0.0), _scans(root, device_indexes), sql)
            )
    if not explained:
        return {"scans": [], "whole_range_scan": False}
    slowest = max(explained, key=lambda e: e[0])
    # The query that does the work: the one whose scans read the most rows.
    main = max(explained, key=lambda e: max((scan["rows_read"] for scan in e[1]), default=0))
    every_scan = [scan for _ms, scans, _sql in explained for scan in scans]
    # A bitmap of the owner's million (owner_id, ...) entries, AND-ed with a trigram bitmap, reads
    # the whole range as surely as an index scan with a filter does: every scan node counts.
    whole = [
        scan
        for scan in every_scan
        if scan["node"] == "Seq Scan" or scan["rows_read"] >= WHOLE_RANGE_ROWS
    ]
    return {
        "slowest_query_ms": round(slowest[0], 1),
        "main_query_ms": round(main[0], 1),
        "main_query_scans": main[1],
        "whole_range_scan": bool(whole),
        "whole_range_scans": whole,
    }
