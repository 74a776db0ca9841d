"""The drills of the production journey: outages, backup and restore, rate limits, logs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time

from tests.production.journey import (
    CHOSEN,
    FINGERPRINT_SCRIPT,
    SERIALS,
    Steps,
    form_post,
    manage_json,
    messages_to,
)
from tests.production.stack import Stack, admin_sql, run_together, server_of


def postgres_outage(stack: Stack, steps: Steps, customer, deks: dict[str, bytes]) -> None:  # noqa: ANN001
    """The journey's database goes away mid-journey (its relay is cut) and comes back."""
    with steps.step("PostgreSQL outage: 503 pages, nothing half-written, recovery"):
        stack.relay.stop()
        try:
            down = customer.goto("/devices/")
            body = down.text()
            steps.check(down.status == 503, f"/devices/ with the database down: {down.status}")
            assert down.status >= 500
            assert "Traceback" not in body and 'File "' not in body
            assert not any(k.hex() in body.lower() for k in deks.values())
            health = stack.healthz()
            steps.check(
                health is not None and health.status == 503,
                f"/healthz with the database down: {health and health.status}",
            )
            lost = "lost.during.outage@journey.example"
            answer = form_post(stack, "/accounts/register/", {"email": lost}, source="127.0.0.5")
            steps.check(answer.status == 503, f"register POST: {answer.status}")
            assert answer.status >= 500 and "Traceback" not in answer.text
        finally:
            stack.relay.start()
        stack.wait_healthy()
        assert customer.goto("/devices/").status == 200
        assert customer.locator("#search-count").inner_text() == str(len(CHOSEN))
        written = manage_json(
            stack,
            "import json; from accounts.models import User; "
            "from kamkeys.models import OutboundEmail; print(json.dumps(["
            f"User.objects.filter(email={lost!r}).count(), "
            f"OutboundEmail.objects.filter(to={lost!r}).count()]))",
        )
        assert written == [0, 0], written  # nothing half-written
        assert messages_to(stack, lost) == 0


def redis_outage(stack: Stack, steps: Steps) -> None:
    """The private Redis stops and restarts; mail queued meanwhile is sent once."""
    with steps.step("Redis outage: 503 pages, queued email delivered once on recovery"):
        stack.redis.stop()
        try:
            health = stack.healthz()
            steps.check(
                health is not None and health.status == 503,
                f"/healthz with Redis down: {health and health.status}",
            )
            answer = form_post(
                stack,
                "/accounts/register/",
                {"email": "during.redis.outage@journey.example"},
                source="127.0.0.6",
            )
            steps.check(answer.status == 503, f"register with Redis down: {answer.status}")
            assert "Traceback" not in answer.text
            # An operator queues mail while the broker is away: the row waits in the outbox.
            ops = "ops@journey.kamkeys.test"
            stack.manage("send_test_email", ops, env={"KAMKEYS_SKIP_REDIS_CHECK": "true"})
            time.sleep(1)
            assert messages_to(stack, ops) == 0
        finally:
            stack.redis.start()
        stack.wait_healthy()
        deadline = time.monotonic() + 60
        while messages_to(stack, ops) == 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(4)  # two more re-send periods: a duplicate would show now
        assert messages_to(stack, ops) == 1
        back = form_post(
            stack,
            "/accounts/register/",
            {"email": "after.redis.outage@journey.example"},
            source="127.0.0.6",
        )
        assert back.status == 302 and back.headers["Location"].endswith("/register/sent/")


def backup_drill(stack: Stack, steps: Steps, su, customer, deks: dict[str, bytes]) -> None:  # noqa: ANN001
    """pg_dump, restore into a fresh database, compare, and run the stack on the copy."""
    with steps.step("backup drill: pg_dump → restore → stack on the copy"):
        host, port, user, password = server_of(stack.admin_dsn)
        pg_env = {**os.environ, "PGPASSWORD": password}
        dump = stack.workdir / "kamkeys.dump"
        common = ["-h", host, "-p", str(port), "-U", user]
        subprocess.run(
            ["pg_dump", *common, "-Fc", "-f", str(dump), stack.database],
            env=pg_env,
            check=True,
            timeout=120,
        )
        restored = f"{stack.database}_restore"
        admin_sql(stack.admin_dsn, f'CREATE DATABASE "{restored}"')
        subprocess.run(
            [
                "pg_restore",
                *common,
                "--no-owner",
                "--exit-on-error",
                "-d",
                restored,
                str(dump),
            ],
            env=pg_env,
            check=True,
            timeout=120,
        )
        dump.unlink()
        restored_url = stack.env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + restored
        manage = [sys.executable, "manage.py", "shell", "-c", FINGERPRINT_SCRIPT]
        original, copy = (
            json.loads(out.strip().splitlines()[-1])
            for out in run_together(
                [(manage, stack.env), (manage, {**stack.env, "DATABASE_URL": restored_url})]
            )
        )
        assert copy == original
        assert copy["devices"] == SERIALS
        assert copy["key_digests"] == {
            s: {"DEK": hashlib.sha256(deks[s]).hexdigest()} for s in SERIALS
        }
        assert len(copy["triggers"]) >= 3, copy["triggers"]
        # Point the stack at the copy: same sessions, same devices, same counts.
        stack.stop("web", "worker", "beat")
        stack.start_web(env={"DATABASE_URL": restored_url})
        stack.start_celery(env={"DATABASE_URL": restored_url})
        stack.wait_healthy()
        assert customer.goto("/devices/").status == 200
        assert customer.locator("#search-count").inner_text() == str(len(CHOSEN))
        su.goto("/devices/")
        assert su.locator("#search-count").inner_text() == str(len(SERIALS))


def rate_limits(stack: Stack, steps: Steps) -> None:
    """Clients at different loopback addresses through the proxy; one forges X-Forwarded-For."""
    with steps.step("rate limits per client address behind the proxy; forged XFF gains nothing"):

        def limited(source: str, n: int, **headers: str) -> bool:
            """A wrong password from ``source``; True when the answer is "too many"."""
            answer = form_post(
                stack,
                "/accounts/login/",
                {"login": f"nobody{n}@{source}.example", "password": "wrong-Pass-1A!"},
                source=source,
                headers=headers,
            )
            assert answer.status in {200, 400, 429}, answer.status
            return "Too many failed login attempts" in answer.text

        first = [limited("127.0.0.3", n) for n in range(10)]
        assert not any(first), first  # ten failures are answered normally
        assert limited("127.0.0.3", 10)  # the eleventh: login_failed 10/m/ip
        forged = {"X-Forwarded-For": "198.51.100.23"}
        assert limited("127.0.0.3", 11, **forged)  # a forged address gains nothing
        other = limited("127.0.0.4", 0)
        steps.check(not other, "a second client address shares the first one's login limit")


def no_secret_in_any_log(stack: Stack, steps: Steps, secrets_seen: set[str]) -> None:
    """After the journey: every log of the stack, grepped for every secret it saw."""
    with steps.step("logs: no token, session id, password or key in any log of the stack"):
        died = [name for name, process in stack.processes.items() if not process.alive()]
        assert not died, f"did not survive the journey: {died}"  # recovered by themselves
        stack.stop()  # flush everything
        logs = {
            path.name: path.read_text(errors="replace")
            for path in sorted((stack.workdir / "logs").iterdir())
        }
        assert {"nginx-access.log", "web.log", "worker.log", "beat.log"} <= set(logs)
        secrets_seen.discard("")
        leaks = [
            (name, secret[:6] + "…")
            for name, text in logs.items()
            for secret in secrets_seen
            if len(secret) >= 8 and secret in text
        ]
        assert not leaks, leaks
        access = logs["nginx-access.log"]
        for redacted in (
            "/accounts/register/activate/[redacted]/",
            "/read-rights/invitation/[redacted]/",
            "/accounts/password/reset/key/[redacted]/",
        ):
            assert redacted in access, f"{redacted} was never requested through the proxy"
        assert "GET /devices/ HTTP/2.0" in access
        steps.check(
            re.search(r'"GET /devices/ ', logs["web.log"]) is not None,
            "gunicorn writes an access log (deploy/gunicorn.conf.py)",
        )
