"""The image's static files: collected with the production storage (hashed names) at build time,
without any secret, and served with long cache headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kamkeys.test_settings import assert_one_clear_line
from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}
    return run_python(args, env=clean, cwd=ROOT, timeout=180)


def build_step_env(static_root: Path) -> dict[str, str]:
    """What the Dockerfile's collectstatic step has: no secret at all."""
    return {"KAMKEYS_ENV": "production", "KAMKEYS_BUILD_STEP": "1", "STATIC_ROOT": str(static_root)}


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STATIC_ROOT after the image's build step (collectstatic with no secret), once per module:
    collecting hashes and compresses every file, some seconds."""
    home = tmp_path_factory.mktemp("build")
    static_root = home / "static"
    result = run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        build_step_env(static_root),
        home,
    )
    assert result.returncode == 0, result.stderr
    return static_root


def test_the_image_build_collects_hashed_static_files_without_any_secret(collected):
    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/kamkeys.css"]
    assert hashed != "css/kamkeys.css" and (collected / hashed).is_file()
    assert (collected / (hashed + ".gz")).is_file()  # compressed too


def test_the_build_step_flag_runs_nothing_but_collectstatic(tmp_path):
    env = build_step_env(tmp_path / "static")
    assert_one_clear_line(run([sys.executable, "manage.py", "check"], env, tmp_path), "BUILD_STEP")
    gunicorn = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "x:y"]
    assert_one_clear_line(run(gunicorn, env, tmp_path), "BUILD_STEP")
    worker = [sys.executable, "-m", "celery", "-A", "kamkeys", "worker"]
    assert_one_clear_line(run(worker, env, tmp_path), "BUILD_STEP")


def test_the_dockerfile_collects_with_production_settings_and_starts_gunicorn_with_its_config():
    dockerfile = (ROOT / "Dockerfile").read_text()
    step = "KAMKEYS_ENV=production KAMKEYS_BUILD_STEP=1 python manage.py collectstatic"
    assert step in dockerfile
    assert "COPY deploy ./deploy" in dockerfile
    assert (
        'CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "kamkeys.wsgi:application"]'
        in dockerfile
    )


SERVE = """
from django.template.loader import render_to_string
from django.test import Client
page = render_to_string("errors/503.html")
href = page.split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
response = Client(HTTP_HOST="keys.example.com").get(href, secure=True)
print(href, response.status_code, response["Cache-Control"])
"""


def test_production_serves_hashed_static_files_with_a_long_immutable_cache(
    tmp_path, production_env, collected
):
    result = run(
        [sys.executable, "manage.py", "shell", "-c", SERVE],
        {**production_env, "STATIC_ROOT": str(collected)},
        tmp_path,
    )
    href, status, cache_control = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert href.startswith("/static/css/kamkeys.") and href != "/static/css/kamkeys.css"
    assert status == "200", result.stderr
    assert "max-age=315360000" in cache_control and "immutable" in cache_control
