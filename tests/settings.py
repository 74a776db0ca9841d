"""The test settings: ``kamkeys.settings`` with the few things a test run sets once.

pytest selects this module (pyproject's ``DJANGO_SETTINGS_MODULE``); everything else is exactly
what ``kamkeys.settings`` makes of the environment (SQLite and in-process tasks by default,
PostgreSQL and Redis when ``DATABASE_URL``/``REDIS_URL`` are set). What differs, and why:

- ``var/`` lives in a temporary directory, never in the working tree (the embedded default
  would create ``var/`` and ``var/dev.kek`` there). Subprocesses started by tests inherit it.
- One fixed KEK ring (``TEST_KEKS``) for every test, instead of a development key file.
- A cheap Argon2 (same algorithm and library, minimal cost): the production cost takes 0.15 s
  per hash or check, and the generated-input tests log in and change passwords thousands of
  times. ``kamkeys.settings.PASSWORD_HASHERS`` stays the production list; tests that verify the
  production hasher use it (the ``production_password_hashers`` fixture in tests/conftest.py).
- Celery tasks run in-process unless the environment says otherwise (a real worker started by
  a test gets ``CELERY_TASK_ALWAYS_EAGER=false``; tests/kamkeys/realservices.py).
- Under pytest-xdist (``bash scripts/test`` runs two workers) each worker has its own cache keys
  in the shared Redis db: ``KAMKEYS_CACHE_PREFIX`` gets the worker's name, and ``cache.clear()``
  removes that worker's keys instead of flushing the db under the other worker's feet. (The
  database needs nothing: pytest-django gives each worker its own test database.) Each worker
  also has its own Celery queue in that db, so the worker a test starts takes only that test's
  tasks (``shared_broker`` in tests/conftest.py empties it around each test that uses it).
"""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import tempfile

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.cache.backends.redis import RedisCache

# One cache key prefix per pytest-xdist worker; subprocesses inherit the environment and load
# these settings again, so the prefix is computed from the original one, not appended twice.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER:
    os.environ.setdefault(
        "KAMKEYS_TEST_CACHE_PREFIX", os.environ.get("KAMKEYS_CACHE_PREFIX", "kamkeys")
    )
    os.environ["KAMKEYS_CACHE_PREFIX"] = f"{os.environ['KAMKEYS_TEST_CACHE_PREFIX']}-{XDIST_WORKER}"

if not os.environ.get("KAMKEYS_VAR_DIR"):
    _var_dir = tempfile.mkdtemp(prefix="kamkeys-test-var-")
    os.environ["KAMKEYS_VAR_DIR"] = _var_dir
    atexit.register(shutil.rmtree, _var_dir, ignore_errors=True)

from kamkeys.config import env_bool  # noqa: E402
from kamkeys.settings import *  # noqa: E402, F403
from kamkeys.settings import PASSWORD_HASHERS as PRODUCTION_PASSWORD_HASHERS  # noqa: E402

# --- one KEK ring ---------------------------------------------------------------------------
# tests/keyvault adds a version 2 to this ring for the rotation tests (add_kek_v2).
TEST_KEK_V1 = base64.b64encode(bytes(range(32))).decode()
KAMKEYS_KEKS = f"1:{TEST_KEK_V1}"
KAMKEYS_KEK_FILE = ""
KAMKEYS_CREATE_DEV_KEK = False


# --- a fast password hasher -----------------------------------------------------------------
class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at the lowest cost: the same "argon2$…" hashes, in microseconds."""

    time_cost = 1
    memory_cost = 8
    parallelism = 1


PASSWORD_HASHERS = [
    "tests.settings.CheapArgon2PasswordHasher",
    *(h for h in PRODUCTION_PASSWORD_HASHERS if not h.endswith(".Argon2PasswordHasher")),
]

# --- tasks run in-process -------------------------------------------------------------------
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# One queue per xdist worker (subprocesses load these settings too, with the same worker name).
CELERY_TASK_DEFAULT_QUEUE = f"celery-{XDIST_WORKER}" if XDIST_WORKER else "celery"


# --- one cache per xdist worker -------------------------------------------------------------
class WorkerRedisCache(RedisCache):
    """Django's RedisCache; under pytest-xdist ``clear()`` deletes this worker's keys only
    (Django's own clear() is FLUSHDB: the other worker's rate limits, and the broker's queue)."""

    def clear(self) -> bool:
        if not XDIST_WORKER:
            return super().clear()
        client = self._cache.get_client(None, write=True)
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.key_prefix) + ":*"
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
        return True


if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":  # noqa: F405
    CACHES["default"]["BACKEND"] = "tests.settings.WorkerRedisCache"  # noqa: F405
