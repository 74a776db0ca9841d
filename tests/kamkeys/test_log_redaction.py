"""No token, query string or session id in a log line: gunicorn's access log and Django's logs.

Whoever reads a log (an operator, a log shipper, a backup of it) must not be able to reset a
password, complete a registration or accept an invitation with what they read.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.urls import URLResolver, get_resolver, reverse

from kamkeys.logredact import (
    TOKEN_PATH_PATTERNS,
    TOKEN_PATHS,
    nginx_map,
    redact_path,
    redact_text,
    redact_url,
)
from tests.kamkeys.realservices import free_port
from tests.processes import run_python

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq9SECRETtoken0123"


def token_urls() -> list[str]:
    """Every token-bearing page of the project, with SECRET as its token."""
    return [
        reverse("account_reset_password_from_key", kwargs={"uidb36": "4", "key": SECRET}),
        reverse("accounts:activate", args=[SECRET]),
        reverse("readrights:invitation", args=[SECRET]),
    ]


def walk(patterns, prefix: str = ""):  # noqa: ANN001, ANN201
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_every_url_with_a_text_parameter_is_a_known_token_path():
    """A new URL with a string in its path must be judged: token (add it to TOKEN_PATHS) or not."""
    routes = {
        route
        for route in walk(get_resolver().url_patterns)
        if not route.startswith("admin/")
        and ("(?P<" in route or re.search(r"<(?!int:)[^>]+>", route))
    }
    not_secrets = {"api/^v1/devices/(?P<serial>[^/]{1,64})/?$"}  # a serial number is no secret
    assert routes - not_secrets == {
        "accounts/register/activate/<str:token>/",
        "accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        "read-rights/invitation/<str:token>/",
    }
    assert len(TOKEN_PATHS) == len(routes - not_secrets)


@pytest.mark.parametrize("url", token_urls())
def test_the_token_of_every_token_link_is_redacted(url):
    redacted = redact_path(url + "?next=/x/&key=" + SECRET)
    assert SECRET not in redacted and "?" not in redacted
    assert redacted.endswith("/[redacted]/")
    assert any(re.match(pattern, url) for pattern in TOKEN_PATH_PATTERNS)
    # Percent-encoding the path does not slip past the rule.
    encoded = url.replace("/accounts/", "/%61ccounts/").replace("/read-rights/", "/read-%72ights/")
    assert SECRET not in redact_path(encoded)
    # Nor does a doubled slash (a link pasted after the host's slash): the development server
    # serves "//read-rights/invitation/<token>/" as the invitation, and every server logs it.
    for doubled in ("/" + url, url.replace("/", "//"), url.replace("/", "/%2F", 1)):
        assert SECRET not in redact_path(doubled)
        assert SECRET not in redact_text(f'"GET {doubled} HTTP/1.1" 410')


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password/reset/key/done/",
        "/read-rights/invitation/accept/",
        "/read-rights/invitations/12/resend/",
        "/devices/",
    ],
)
def test_ordinary_pages_keep_their_path_but_lose_the_query_string(path):
    assert redact_path(path + "?page=2") == path


def test_referrers_and_free_text_are_redacted_too():
    url = reverse("accounts:activate", args=[SECRET])
    assert SECRET not in redact_url(f"https://keys.example.com{url}?a=b")
    text = f'Not Found: {url} and "GET {url}?x={SECRET} HTTP/1.1" from https://h.example{url}'
    assert SECRET not in redact_text(text)
    assert "HTTP/1.1" in redact_text(text)


API_TOKEN = "kk_live_0123456789abcdef_" + "Q" * 40


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {API_TOKEN}",
        f"{{'HTTP_AUTHORIZATION': 'Bearer {API_TOKEN}'}}",
        f"authorization={API_TOKEN}",
        f"a client sent {API_TOKEN} in a form",
        f"GET /api/v1/devices/{API_TOKEN}/ HTTP/1.1",
        f"https://keys.example/api/v1/devices/?token={API_TOKEN}",
        "Authorization: Basic c3VwZXI6aHVudGVyMg==",
    ],
)
def test_api_tokens_and_authorization_values_are_redacted(text):
    redacted = redact_text(text)
    assert API_TOKEN not in redacted and "c3VwZXI6aHVudGVyMg" not in redacted
    assert "[redacted]" in redacted or "?" in text  # a query string is dropped whole


def test_a_log_line_of_an_api_request_holds_no_token(caplog):
    import io
    import logging

    from kamkeys.logredact import RedactTokens

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactTokens())
    logger = logging.getLogger("kamkeys.test.api")
    logger.addHandler(handler)
    try:
        logger.warning("refused %s", {"HTTP_AUTHORIZATION": f"Bearer {API_TOKEN}"})
        try:
            raise ValueError(f"bad header Authorization: Bearer {API_TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert API_TOKEN not in stream.getvalue() and "[redacted]" in stream.getvalue()


def test_the_nginx_map_carries_the_same_rules():
    block = nginx_map()
    for pattern in TOKEN_PATH_PATTERNS:
        assert f'"~{pattern}"' in block
    assert block.startswith("map $uri $kamkeys_log_uri {")


def embedded_env(var_dir: Path) -> dict[str, str]:
    """The embedded default (SQLite in var_dir), whatever this test run uses."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAMKEYS_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env["KAMKEYS_VAR_DIR"] = str(var_dir)
    return env


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    """A migrated embedded database for the subprocesses of this module."""
    path = tmp_path_factory.mktemp("var")
    migrated = run_python(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        env=embedded_env(path),
        cwd=ROOT,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr
    return path


def run_embedded(code: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_python(
        [sys.executable, "manage.py", "shell", "-c", code], env=embedded_env(var_dir), cwd=ROOT
    )


def test_django_request_log_lines_hold_no_token(var_dir):
    """django.request logs every 404 and 403 with its path; django.security.csrf too."""
    urls = token_urls()
    code = (
        "from django.test import Client; c = Client(enforce_csrf_checks=True); "
        f"[c.get(u + 'nothing-here/?q={SECRET}') for u in {urls!r}]; "
        f"[c.post(u, {{}}) for u in {urls!r}]"
    )
    result = run_embedded(code, var_dir)
    logged = result.stdout + result.stderr
    assert "Not Found" in logged and "Forbidden" in logged, logged
    assert "[redacted]" in logged
    assert SECRET not in logged


def gunicorn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_gunicorn_access_log_holds_no_token_and_no_query_string(var_dir):
    port = free_port()
    env = embedded_env(var_dir)
    env.update(
        {
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
            "KAMKEYS_TRUSTED_PROXY_COUNT": "1",
        }
    )
    server = gunicorn(env, "kamkeys.wsgi:application")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)  # noqa: S310
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.3)
        for url in token_urls():
            request = urllib.request.Request(  # noqa: S310
                f"http://127.0.0.1:{port}{url}?token={SECRET}",
                headers={
                    "X-Forwarded-For": "6.6.6.6, 198.51.100.7",
                    "Referer": f"https://keys.example.com{url}",
                    "Cookie": f"sessionid={SECRET}",
                },
            )
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=10)  # noqa: S310
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    access = [line for line in out.splitlines() if '"GET ' in line]
    assert len(access) >= len(token_urls()) + 1, out + err
    assert SECRET not in out + err
    assert "?" not in "".join(access)
    assert any("/accounts/register/activate/[redacted]/" in line for line in access)
    # The client by the trusted-proxy rule, not the proxy and not the forged entry.
    assert all(line.startswith("198.51.100.7 ") for line in access[1:]), access


def test_gunicorn_error_log_holds_no_token_and_no_query_string(capsys):
    """gunicorn logs "Error handling request <uri>" when a response fails mid-stream."""
    from gunicorn.config import Config

    from kamkeys.gunicornlog import RedactingLogger

    config = Config()
    config.set("errorlog", "-")
    logger = RedactingLogger(config)
    try:
        raise RuntimeError("the stream broke")
    except RuntimeError:
        logger.exception(
            "Error handling request %s", f"/read-rights/invitation/{SECRET}/?token={SECRET}"
        )
    logged = capsys.readouterr().err
    assert "Error handling request /read-rights/invitation/[redacted]/" in logged
    assert SECRET not in logged
