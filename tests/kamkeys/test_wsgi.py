"""A gunicorn worker loads, before its first request, what that request would wait for."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]
LOADED = ("api.views", "keyfiles.downloads", "devices.views", "zxcvbn.matching")


def test_the_wsgi_module_loads_the_views_before_the_first_request():
    code = (
        "import sys, kamkeys.wsgi; "
        f"print(*[name for name in {LOADED!r} if name not in sys.modules])"
    )
    result = run_python([sys.executable, "-c", code], env=dict(os.environ), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"not loaded at start: {result.stdout}"
