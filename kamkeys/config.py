"""Reading the environment, and failing with one clear line when it is wrong."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, NoReturn
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


def parse_database_url(url: str) -> dict[str, Any]:
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
