"""Fresh Python processes for the tests that start kamkeys as an operator would (``manage.py``,
``python -m gunicorn``, ``python -m celery``, ``python -c``), forked from a warm server instead
of started cold.

Each run is still a process of its own, with exactly the environment, working directory, argv,
stdout, stderr and exit status the test gives or reads; nothing of the test process reaches it.
The server (the standard library's multiprocessing forkserver) is started before any settings
exist and imports only third-party libraries, never the project, so the project's settings and
apps load in the child as they would at a real start. What it saves is the interpreter start
and the import of Django and its libraries, which some thirty tests paid again and again.

Use ``run_python([sys.executable, ...], env=..., cwd=...)`` where ``subprocess.run`` would have
been used with ``capture_output=True, text=True``. Long-lived servers the test talks to over a
socket (gunicorn serving requests, Celery workers) stay real subprocesses.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

# Libraries the project's processes import at start; each imports without Django settings.
PRELOAD = [
    "django.core.management",
    "django.db.models",
    "django.forms",
    "django.template.base",
    "django.contrib.admin",
    "django.contrib.postgres.fields",
    "celery.app.base",
    "kombu",
    "redis",
    "psycopg",
    "cryptography.hazmat.primitives.keywrap",
    "pyzipper",
    "zxcvbn",
    "gunicorn.app.wsgiapp",
    "allauth.account",
    "django_filters",
    "whitenoise.middleware",
]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def run_python(
    command: list[str], *, env: dict[str, str], cwd: str | Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``[sys.executable, <script> | -m <module> | -c <code>, *args]`` in a fresh process."""
    if command[0] != sys.executable:
        raise ValueError("run_python runs this interpreter only")
    with tempfile.TemporaryDirectory(prefix="kamkeys-process-") as scratch:
        out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
        process = _context.Process(
            target=_run_in_child, args=(command[1:], env, str(cwd), str(out), str(err))
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(
            command,
            process.exitcode,
            out.read_text(errors="replace") if out.exists() else "",
            err.read_text(errors="replace") if err.exists() else "",
        )


def _run_in_child(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """What ``python <argv>`` does, in the forked child; ends the process with its status."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    status = 0
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102
        elif argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, cwd)
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(argv[0])
            sys.argv = [argv[0], *argv[1:]]
            sys.path.insert(0, os.path.dirname(script))
            runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        status = _exit_status(stop.code)
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        status = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
