"""A wrong configuration stops every process at once: one line, exit 78, no respawn loop.

Before deploy/gunicorn.conf.py, gunicorn's master listened and kept forking workers that each
died of the same missing secret, a screen of repeated errors and a web container that looked up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kamkeys.test_settings import assert_one_clear_line
from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]

GUNICORN = [
    sys.executable,
    "-m",
    "gunicorn",
    "--config",
    "deploy/gunicorn.conf.py",
    "kamkeys.wsgi:application",
]
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "kamkeys", "worker", "--pool", "solo"]
CELERY_BEAT = [sys.executable, "-m", "celery", "-A", "kamkeys", "beat"]


def run(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}
    clean.setdefault("GUNICORN_BIND", "127.0.0.1:0")
    started = time.monotonic()
    result = run_python(command, env=clean, cwd=ROOT, timeout=60)
    result.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    return result


@pytest.mark.parametrize(
    "command", [GUNICORN, CELERY_WORKER, CELERY_BEAT], ids=["gunicorn", "worker", "beat"]
)
def test_a_missing_secret_stops_web_worker_and_beat_with_one_line(
    command, production_env, tmp_path
):
    env = dict(production_env)
    env.pop("SECRET_KEY")
    result = run(command, env, tmp_path)
    assert_one_clear_line(result, "SECRET_KEY")
    assert result.seconds < 20


def test_gunicorn_with_unreachable_redis_stops_before_listening(production_env, tmp_path):
    env = {**production_env, "REDIS_URL": "redis://127.0.0.1:9/0"}
    env.pop("KAMKEYS_SKIP_REDIS_CHECK")
    result = run(GUNICORN, env, tmp_path)
    assert_one_clear_line(result, "Redis")
    assert "Listening at" not in result.stderr


def test_a_malformed_gunicorn_setting_gives_one_line(production_env, tmp_path):
    result = run(GUNICORN, {**production_env, "GUNICORN_WORKERS": "many"}, tmp_path)
    assert_one_clear_line(result, "GUNICORN_WORKERS")


def test_gunicorn_config_reads_bind_and_workers_from_the_environment(production_env, tmp_path):
    code = (
        "import runpy; c = runpy.run_path('deploy/gunicorn.conf.py'); "
        "from django.db import connection; "
        "print(c['bind'], c['workers'], c['accesslog'], c['logger_class'].__name__, "
        "connection.connection is None)"
    )
    env = {**production_env, "GUNICORN_BIND": "127.0.0.1:9000", "GUNICORN_WORKERS": "5"}
    result = run([sys.executable, "-c", code], env, tmp_path)
    # The master loads Django but opens no database connection its workers would share.
    assert result.stdout.split() == ["127.0.0.1:9000", "5", "-", "RedactingLogger", "True"], (
        result.stderr
    )
    env.pop("GUNICORN_BIND")
    env.pop("GUNICORN_WORKERS")
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}
    result = run_python([sys.executable, "-c", code], env=clean, cwd=ROOT)
    assert result.stdout.split()[:2] == ["0.0.0.0:8000", "2"], result.stderr
