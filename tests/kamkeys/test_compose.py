"""docker-compose.yml describes the production stack: web, worker, beat, postgres, redis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_production_services_with_their_commands():
    services = load()["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    assert services["web"]["command"][0] == "gunicorn"
    assert "kamkeys.wsgi:application" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "kamkeys", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "kamkeys", "beat"]
    for name in ("web", "postgres", "redis", "worker"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["KAMKEYS_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_file_is_accepted_by_docker_compose():
    binary = shutil.which("docker-compose")
    require_service(binary is not None, "needs Debian's docker-compose to validate the file")
    env = {
        **os.environ,
        "SECRET_KEY": "x" * 60,
        "KAMKEYS_KEKS": "1:" + "A" * 43 + "=",
        "EMAIL_HOST": "smtp.example",
        "POSTGRES_PASSWORD": "pw",
    }
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
