"""Bad configuration stops start-up with one clear line; good production settings pass --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]


def run_manage(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KAMKEYS_", "DATABASE_URL", "REDIS_URL", "EMAIL_", "SECRET_KEY"))
        and key not in {"ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(env_overrides)
    return run_python([sys.executable, "manage.py", *(args or ("check",))], env=env, cwd=ROOT)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 78, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kamkeys: configuration error:")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr


def test_malformed_database_url_gives_one_clear_line():
    assert_one_clear_line(run_manage({"DATABASE_URL": "mysql//oops"}), "DATABASE_URL")


def test_database_url_without_a_database_name_gives_one_clear_line():
    assert_one_clear_line(run_manage({"DATABASE_URL": "postgres://127.0.0.1:5432"}), "DATABASE_URL")


@pytest.mark.parametrize(
    "missing, word",
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS"),
        ("KAMKEYS_KEK_FILE", "KEK"),
        ("DATABASE_URL", "DATABASE_URL"),
        ("REDIS_URL", "REDIS_URL"),
        ("KAMKEYS_SITE_URL", "KAMKEYS_SITE_URL"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(production_env, missing, word):
    env = dict(production_env)
    env.pop(missing)
    assert_one_clear_line(run_manage(env), word)


@pytest.mark.parametrize(
    "site_url",
    ["http://keys.example.com", "https://keys.example.com/portal", "keys.example.com", "https://"],
)
def test_production_refuses_a_site_url_that_is_not_an_https_origin(production_env, site_url):
    env = {**production_env, "KAMKEYS_SITE_URL": site_url}
    assert_one_clear_line(run_manage(env), "KAMKEYS_SITE_URL")


def test_production_refuses_a_kek_file_that_does_not_exist(production_env, tmp_path):
    env = {**production_env, "KAMKEYS_KEK_FILE": str(tmp_path / "missing.kek")}
    assert_one_clear_line(run_manage(env), "KAMKEYS_KEK_FILE")


def test_production_with_unreachable_redis_gives_one_clear_line(production_env):
    env = {**production_env, "REDIS_URL": "redis://127.0.0.1:9/0"}
    env.pop("KAMKEYS_SKIP_REDIS_CHECK")
    assert_one_clear_line(run_manage(env), "Redis", "unreachable")


def test_production_settings_pass_the_deploy_check(production_env):
    result = run_manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_debug_is_never_on_in_production_even_if_asked(production_env):
    env = {**production_env, "DEBUG": "true"}
    code = "from django.conf import settings; print(settings.DEBUG)"
    result = run_manage(env, "shell", "-c", code)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_embedded_default_creates_its_database_under_var(tmp_path):
    env = {"KAMKEYS_VAR_DIR": str(tmp_path / "var")}
    result = run_manage(
        env,
        "shell",
        "-c",
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.ALLOWED_HOSTS)",
    )
    out = result.stdout.strip().splitlines()[-1]
    assert "sqlite3 True" in out
    assert "localhost" in out and "*" not in out


CONCURRENT_WRITERS = """
import threading
from django.db import connection, transaction

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE submission (n integer)")
    cursor.execute("INSERT INTO submission VALUES (0)")
both_read = threading.Barrier(2)
errors = []

def submit():  # what a form's service does: read in a transaction, then write
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT n FROM submission")
            try:
                both_read.wait(2)
            except threading.BrokenBarrierError:
                pass  # the other waits for this transaction: the point of the test
            cursor.execute("UPDATE submission SET n = n + 1")
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()

threads = [threading.Thread(target=submit) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT n FROM submission")
    print(errors, cursor.fetchone()[0])
"""


def test_a_form_sent_twice_at_once_on_the_embedded_default_waits_instead_of_failing(tmp_path):
    """A double click on Complete registration, Register device or an invitation's form sends
    the same write twice at once. SQLite refused the second transaction ("database is locked",
    a 500) instead of letting it wait for the first."""
    result = run_manage(
        {"KAMKEYS_VAR_DIR": str(tmp_path / "var")}, "shell", "-c", CONCURRENT_WRITERS
    )
    assert result.stdout.strip().splitlines()[-1] == "[] 2", result.stdout + result.stderr
