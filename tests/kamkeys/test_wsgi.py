"""A gunicorn worker loads, before its first request, what that request would wait for, and
freezes it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]
LOADED = ("api.views", "keyfiles.downloads", "devices.views", "zxcvbn.matching")


def test_the_wsgi_module_loads_the_views_before_the_first_request():
    """And then takes it out of the garbage collector's sight: otherwise every few large pages
    a full collection walked those objects for ~50 ms inside a request."""
    code = (
        "import gc, sys, kamkeys.wsgi; "
        f"print(*[name for name in {LOADED!r} if name not in sys.modules], sep=','); "
        "print(gc.get_freeze_count(), len(gc.get_objects()))"
    )
    result = run_python([sys.executable, "-c", code], env=dict(os.environ), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    missing, counts = result.stdout.splitlines()
    assert missing == "", f"not loaded at start: {missing}"
    frozen, still_collected = map(int, counts.split())
    assert frozen > 50_000 and still_collected < frozen / 10
