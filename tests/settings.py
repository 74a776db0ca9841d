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
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile

from django.contrib.auth.hashers import Argon2PasswordHasher

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
