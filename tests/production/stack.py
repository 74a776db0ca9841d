"""The production stack as docker-compose.yml describes it, started without Docker.

PostgreSQL (a database of the journey's own on the machine's server, reached through a TCP relay
the journey can cut), a private Redis, gunicorn with ``KAMKEYS_ENV=production``, a Celery worker
and beat, an aiosmtpd SMTP server on loopback, and Debian's nginx terminating TLS with a
throwaway certificate for ``keys.kamkeys.test``.

The commands and environment names below are the ones docker-compose.yml runs;
``tests/production/test_parity.py`` compares them so the two cannot drift.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.production.certs import HOST, Certificates
from tests.production.relay import Relay

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_NGINX_CONF = ROOT / "deploy" / "nginx.conf"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"

# --- what docker-compose.yml runs (compared by test_parity.py) ---------------------------------

COMMANDS: dict[str, list[str]] = {
    "migrate": ["python", "manage.py", "migrate", "--noinput"],
    "web": ["gunicorn", "--config", "deploy/gunicorn.conf.py", "kamkeys.wsgi:application"],
    "worker": ["celery", "-A", "kamkeys", "worker", "--loglevel=INFO", "--concurrency", "2"],
    "beat": [
        "celery",
        "-A",
        "kamkeys",
        "beat",
        "--loglevel=INFO",
        "--schedule",
        "/tmp/celerybeat-schedule",
    ],
}
COLLECTSTATIC = ["python", "manage.py", "collectstatic", "--noinput"]  # the Dockerfile's build step
# The environment every kamkeys process gets (docker-compose.yml's x-kamkeys-env).
ENV_NAMES = frozenset(
    {
        "KAMKEYS_ENV",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "REDIS_URL",
        "KAMKEYS_KEKS",
        "KAMKEYS_SITE_URL",
        "KAMKEYS_TRUSTED_PROXY_COUNT",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS",
        "DEFAULT_FROM_EMAIL",
    }
)
WEB_ENV_NAMES = frozenset({"GUNICORN_BIND", "GUNICORN_WORKERS"})
# Test-only speed knobs (production keeps their defaults) and where the test keeps its files.
JOURNEY_ONLY_ENV = {
    "KAMKEYS_OUTBOX_RESEND_EVERY_SECONDS": "2",
    "KAMKEYS_OUTBOX_BACKOFF_SECONDS": "1",
    "KAMKEYS_CACHE_PREFIX": "journey",
}

JOURNEY_ONLY_NAMES = frozenset({*JOURNEY_ONLY_ENV, "STATIC_ROOT", "KAMKEYS_VAR_DIR"})
PROCESS_NAMES = frozenset({"PATH", "HOME", "LANG", "PYTHONUNBUFFERED"})

# The lines of deploy/nginx.conf the journey replaces: marker → the shipped line's value part.
NGINX_SUBSTITUTIONS = (
    "error_log",
    "access_log",
    "upstream",
    "http_listen",
    "server_name",
    "https_listen",
    "ssl_certificate",
    "ssl_certificate_key",
)


def local_command(command: list[str], **paths: str) -> list[str]:
    """A compose command as this machine runs it: console scripts through this interpreter (so
    the checkout's code is imported), and beat's schedule file in the journey's directory."""
    head, *rest = command
    argv = [sys.executable, *rest] if head == "python" else [sys.executable, "-m", head, *rest]
    if "schedule" in paths:
        argv[argv.index("/tmp/celerybeat-schedule")] = paths["schedule"]
    return argv


def render_nginx_conf(shipped: str, values: dict[str, str]) -> str:
    """deploy/nginx.conf with the marked lines replaced, and nothing else.

    ``values`` maps each marker to the new directive (without ``;``). Every marker must be
    used, and every marked line must be replaced, so the result differs from the shipped file
    exactly in those lines.
    """
    assert set(values) == set(NGINX_SUBSTITUTIONS), sorted(values)
    used: set[str] = set()
    lines = []
    for line in shipped.splitlines(keepends=True):
        match = re.match(r"^(\s*)[^#]*;\s*# deploy: (\w+)\n?$", line)
        if match:
            indent, marker = match.groups()
            assert marker in values, f"unknown deploy marker {marker!r}"
            used.add(marker)
            line = f"{indent}{values[marker]};  # deploy: {marker}\n"
        lines.append(line)
    assert used == set(values), f"markers missing from deploy/nginx.conf: {set(values) - used}"
    return "".join(lines)


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process in its own process group (gunicorn and Celery fork workers), its output
    in a log file the journey greps afterwards."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def run(argv: list[str], env: dict[str, str], *, timeout: float = 120) -> str:
    """A one-shot command (migrate, collectstatic, createsuperuser...); its output or a failure."""
    return run_together([(argv, env)], timeout=timeout)[0]


def run_together(
    commands: list[tuple[list[str], dict[str, str]]], *, timeout: float = 120
) -> list[str]:
    """Independent one-shot commands side by side (each is mostly Django's start-up)."""
    started = [
        subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for argv, env in commands
    ]
    outputs = []
    for (argv, _), process in zip(commands, started, strict=True):
        stdout, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"{argv[1:4]} failed:\n{stdout[-3000:]}{stderr[-3000:]}"
        outputs.append(stdout)
    return outputs


# --- https through the proxy, from a chosen loopback address ------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class _Connection(http.client.HTTPSConnection):
    """TLS to the proxy on loopback, verified for the test host name (SNI and certificate)."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class Stack:
    workdir: Path
    site_url: str
    https_port: int
    http_port: int
    web_port: int
    env: dict[str, str]
    certs: Certificates
    database: str
    admin_dsn: str  # the real server, for pg_dump/createdb (not through the relay)
    relay: Relay
    redis: object
    smtp: object  # tests.kamkeys.realservices.Sink
    processes: dict[str, Process] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca_file))

    def https(
        self,
        method: str,
        path: str,
        *,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30,
    ) -> Response:
        conn = _Connection(
            HOST,
            self.https_port,
            context=self.ssl_context,
            source_address=(source, 0),
            timeout=timeout,
        )
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            conn.close()

    def http(self, path: str) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": HOST})
            response = conn.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            conn.close()

    def healthz(self, host: str = HOST) -> Response | None:
        """/healthz straight from gunicorn (as docker-compose's healthcheck asks it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=10)
        try:
            conn.request("GET", "/healthz", headers={"Host": host})
            response = conn.getresponse()
            return Response(response.status, response.headers, response.read())
        except OSError:
            return None
        finally:
            conn.close()

    def wait_healthy(self, timeout: float = 60) -> Response:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.healthz()
            if last is not None and last.status == 200:
                return last
            web = self.processes.get("web")
            if web is not None and not web.alive():
                raise AssertionError(f"gunicorn exited:\n{web.output()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(
            f"/healthz did not answer 200 in {timeout}s: {last and (last.status, last.text)}"
        )

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        return run(
            [sys.executable, "manage.py", *args], {**self.env, **(env or {})}, timeout=timeout
        )

    # The web process, restartable (the backup drill points it at another database).
    def start_web(self, env: dict[str, str] | None = None) -> Process:
        web_env = {
            **self.env,
            **(env or {}),
            "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "GUNICORN_WORKERS": "2",
        }
        argv = local_command(COMMANDS["web"])
        process = Process("web", argv, web_env, self.workdir / "logs" / "web.log").start()
        self.processes["web"] = process
        return process

    def start_celery(self, env: dict[str, str] | None = None) -> None:
        """The Celery worker and beat, as docker-compose.yml runs them."""
        celery_env = {**self.env, **(env or {})}
        logs = self.workdir / "logs"
        self.processes["worker"] = Process(
            "worker", local_command(COMMANDS["worker"]), celery_env, logs / "worker.log"
        ).start()
        self.processes["beat"] = Process(
            "beat",
            local_command(COMMANDS["beat"], schedule=str(self.workdir / "celerybeat-schedule")),
            celery_env,
            logs / "beat.log",
        ).start()

    def stop(self, *names: str) -> None:
        for name in names or ("nginx", "beat", "worker", "web"):
            process = self.processes.get(name)
            if process is not None:
                process.stop()


def private_tmpdir(prefix: str) -> Path:
    """A directory nginx's unprivileged workers can traverse (pytest's tmp_path is 0700 under
    a 0700 parent, so proxy buffering to disk would fail there)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def server_of(database_url: str) -> tuple[str, int, str, str]:
    """(host, port, user, password) of a postgres:// URL."""
    parts = urlsplit(database_url)
    return (
        parts.hostname or "127.0.0.1",
        parts.port or 5432,
        parts.username or "",
        parts.password or "",
    )


def admin_sql(url: str, *statements: str) -> None:
    import psycopg

    host, port, user, password = server_of(url)
    with psycopg.connect(
        host=host, port=port, user=user, password=password, dbname="postgres", autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement)
