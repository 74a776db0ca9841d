"""The production stack, started for the journey and stopped (whatever happened) after it."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import require_service
from tests.production.certs import HOST, make_certificates
from tests.production.net import free_port, wait_for_port
from tests.production.relay import Relay
from tests.production.stack import (
    COLLECTSTATIC,
    COMMANDS,
    ENV_NAMES,
    JOURNEY_ONLY_ENV,
    JOURNEY_ONLY_NAMES,
    PROCESS_NAMES,
    SHIPPED_NGINX_CONF,
    Process,
    Stack,
    admin_sql,
    local_command,
    nginx_binary,
    private_tmpdir,
    remove_tree,
    render_nginx_conf,
    run_together,
    server_of,
)

# --- the stack -------------------------------------------------------------------------------


def _database_server() -> str:
    url = os.environ.get("DATABASE_URL", "")
    require_service(
        url.startswith(("postgres://", "postgresql://")),
        "the production journey needs PostgreSQL: set DATABASE_URL=postgres://…",
    )
    return url


@pytest.fixture
def stack(chromium_path: str) -> Iterator[Stack]:
    server_url = _database_server()
    require_service(shutil.which("redis-server") is not None, "needs redis-server")
    require_service(nginx_binary() is not None, "needs Debian's nginx (nginx-light)")
    for tool in ("pg_dump", "pg_restore"):
        require_service(shutil.which(tool) is not None, f"needs {tool} (postgresql-client)")

    with contextlib.ExitStack() as cleanup:
        yield from _started_stack(server_url, cleanup)


def _started_stack(server_url: str, cleanup: contextlib.ExitStack) -> Iterator[Stack]:
    """Start everything; ``cleanup`` stops whatever was started, in reverse order."""
    from aiosmtpd.controller import Controller

    from tests.kamkeys.realservices import PrivateRedis, Sink

    workdir = private_tmpdir("kamkeys-journey-")
    cleanup.callback(_remove_or_keep, workdir)
    (workdir / "logs").mkdir()
    (workdir / "logs").chmod(0o755)
    base_name = urlsplit(server_url).path.strip("/")
    database = f"{base_name}_prod"
    host, port, user, password = server_of(server_url)
    drop = (
        f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
        f'DROP DATABASE IF EXISTS "{database}_restore" WITH (FORCE)',
    )
    admin_sql(server_url, *drop, f'CREATE DATABASE "{database}"')
    cleanup.callback(admin_sql, server_url, *drop)
    relay = Relay((host, port))
    relay.start()
    cleanup.callback(relay.stop)
    redis = PrivateRedis(workdir)
    redis.start()
    cleanup.callback(redis.stop)
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    cleanup.callback(controller.stop)
    https_port, http_port, web_port = free_port(), free_port(), free_port()
    site_url = f"https://{HOST}:{https_port}"
    credentials = f"{user}:{password}@" if password else f"{user}@"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # docker-compose.yml's x-kamkeys-env, with this machine's values
        "KAMKEYS_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": site_url,
        "DATABASE_URL": f"postgres://{credentials}127.0.0.1:{relay.port}/{database}",
        "REDIS_URL": redis.url,
        "KAMKEYS_KEKS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "KAMKEYS_SITE_URL": site_url,
        "KAMKEYS_TRUSTED_PROXY_COUNT": "1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": "false",
        "DEFAULT_FROM_EMAIL": "kamkeys <no-reply@journey.kamkeys.test>",
        # the journey's own files and speed knobs
        **JOURNEY_ONLY_ENV,
        "STATIC_ROOT": str(workdir / "static"),
        "KAMKEYS_VAR_DIR": str(workdir / "var"),
    }
    # Exactly docker-compose's names, plus the journey's own (test_parity.py holds compose to it).
    assert set(env) - JOURNEY_ONLY_NAMES - PROCESS_NAMES == ENV_NAMES
    certs = make_certificates(workdir)
    the_stack = Stack(
        workdir=workdir,
        site_url=site_url,
        https_port=https_port,
        http_port=http_port,
        web_port=web_port,
        env=env,
        certs=certs,
        database=database,
        admin_dsn=server_url,
        relay=relay,
        redis=redis,
        smtp=sink,
    )
    cleanup.callback(the_stack.stop)
    run_together([(local_command(COMMANDS["migrate"]), env), (local_command(COLLECTSTATIC), env)])
    the_stack.start_web()
    the_stack.start_celery()
    conf = workdir / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            SHIPPED_NGINX_CONF.read_text(),
            {
                "error_log": f"error_log {workdir}/logs/nginx-error.log crit",
                "access_log": f"access_log {workdir}/logs/nginx-access.log kamkeys",
                "upstream": f"server 127.0.0.1:{web_port}",
                "http_listen": f"listen 127.0.0.1:{http_port}",
                "server_name": f"server_name {HOST}",
                "https_listen": f"listen 127.0.0.1:{https_port} ssl http2",
                "ssl_certificate": f"ssl_certificate {certs.cert_file}",
                "ssl_certificate_key": f"ssl_certificate_key {certs.key_file}",
            },
        )
    )
    the_stack.processes["nginx"] = Process(
        "nginx",
        [
            nginx_binary() or "nginx",
            "-p",
            str(workdir),
            "-c",
            str(conf),
            "-e",
            str(workdir / "logs" / "nginx-startup.log"),
            "-g",
            f"daemon off; pid {workdir}/nginx.pid;",
        ],
        env,
        workdir / "logs" / "nginx-stdout.log",
    ).start()
    assert wait_for_port(https_port), the_stack.processes["nginx"].output()
    the_stack.wait_healthy()
    yield the_stack


def _remove_or_keep(workdir: Path) -> None:
    if os.environ.get("KAMKEYS_KEEP_JOURNEY_DIR"):
        print(f"journey files kept in {workdir}")
    else:
        remove_tree(workdir)
