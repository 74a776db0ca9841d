"""gunicorn for kamkeys: ``gunicorn --config deploy/gunicorn.conf.py kamkeys.wsgi:application``.

Environment: ``GUNICORN_BIND`` (default ``0.0.0.0:8000``), ``GUNICORN_WORKERS`` (default 2),
``GUNICORN_THREADS`` (default 4), ``GUNICORN_TIMEOUT`` (seconds, default 120), plus every
kamkeys setting (README, "Production").

Django's settings are loaded here, in the master, while gunicorn reads this file: a
configuration error (missing secret, unreachable Redis, bad KEK …) stops gunicorn with the
project's one line on stderr and exit status 78 before anything listens or any worker forks,
instead of workers failing to boot over and over.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")

import django  # noqa: E402

django.setup()  # kamkeys.config.fail(): one line on stderr, SystemExit(78)

from kamkeys.config import ConfigError, env_int, fail  # noqa: E402
from kamkeys.gunicornlog import ACCESS_LOG_FORMAT, RedactingLogger  # noqa: E402

try:
    workers = env_int("GUNICORN_WORKERS", 2)
    threads = env_int("GUNICORN_THREADS", 4)
    timeout = env_int("GUNICORN_TIMEOUT", 120)
except ConfigError as exc:
    fail(str(exc))
if workers < 1 or threads < 1 or timeout < 1:
    fail("GUNICORN_WORKERS, GUNICORN_THREADS and GUNICORN_TIMEOUT must be 1 or more")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threads keep the worker's heartbeat going while a large key file streams out.
worker_class = "gthread"
graceful_timeout = 30
keepalive = 5
# No control socket: nothing uses it, and two gunicorns of one user would share its path.
control_socket_disable = True

# The access log goes to stdout, one line a request, without query string, token or cookie
# (kamkeys.gunicornlog, kamkeys.logredact); gunicorn's own messages go to stderr.
accesslog = "-"
errorlog = "-"
logger_class = RedactingLogger
access_log_format = ACCESS_LOG_FORMAT
