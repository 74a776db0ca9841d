"""Reading the environment, and failing with one clear line when it is wrong."""

from __future__ import annotations

import os
import socket
import sys
from typing import NoReturn
from urllib.parse import urlsplit

import dj_database_url


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def fail(message: str) -> NoReturn:
    """Stop start-up with one line on stderr instead of a traceback wall."""
    sys.stderr.write(f"kamkeys: configuration error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(78)  # EX_CONFIG


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def parse_database_url(url: str) -> dj_database_url.DBConfig:
    """PostgreSQL (through psycopg 3) or SQLite from a URL; anything else is a clear error."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ConfigError(
            "DATABASE_URL must look like postgres://user:password@host:5432/name "
            f"(scheme {parts.scheme or 'missing'!r} is not supported)"
        )
    if parts.scheme != "sqlite" and (not parts.hostname or not parts.path.strip("/")):
        raise ConfigError(
            "DATABASE_URL must name a host and a database: postgres://user@host:5432/name"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL is malformed: {exc}") from None
    if parts.scheme != "sqlite":
        config.setdefault("OPTIONS", {})["connect_timeout"] = 5
    return config


def require_reachable_redis(url: str) -> None:
    """In production, an unreachable broker is a start-up error, not a later surprise."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(f"REDIS_URL must look like redis://host:6379/0, not {parts.scheme!r}")
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2):
            pass
    except OSError as exc:
        raise ConfigError(
            f"Redis at {parts.hostname}:{parts.port or 6379} is unreachable ({exc.strerror or exc})"
        ) from None


def parse_site_url(raw: str, *, require_https: bool) -> str:
    """The public origin, ``https://host[:port]``: links in emails point here, never at the
    Host header of whatever request caused them (which a client chooses)."""
    value = raw.strip()
    parts = urlsplit(value)
    schemes = {"https"} if require_https else {"http", "https"}
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in schemes
        or not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
        or any(ch.isspace() for ch in value)
    ):
        wanted = "https://host[:port]" if require_https else "http(s)://host[:port]"
        raise ConfigError(f"KAMKEYS_SITE_URL must look like {wanted} without a path, not {raw!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"
