"""docker-compose.yml, deploy/nginx.conf and the production journey describe one stack.

The journey (test_journey.py) runs the commands and environment names in
``tests.production.stack``; these tests hold docker-compose.yml to the same, and prove the nginx
configuration the journey runs is the shipped one with only its marked lines replaced.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import require_service
from tests.production.certs import make_certificates
from tests.production.stack import (
    COLLECTSTATIC,
    COMMANDS,
    ENV_NAMES,
    GUNICORN_CONF,
    NGINX_SUBSTITUTIONS,
    ROOT,
    SHIPPED_NGINX_CONF,
    WEB_ENV_NAMES,
    nginx_binary,
    render_nginx_conf,
)

COMPOSE = ROOT / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def example_values(tmp: Path) -> dict[str, str]:
    return {
        "error_log": f"error_log {tmp}/error.log crit",
        "access_log": f"access_log {tmp}/access.log kamkeys",
        "upstream": "server 127.0.0.1:18000",
        "http_listen": "listen 127.0.0.1:18080",
        "server_name": "server_name keys.kamkeys.test",
        "https_listen": "listen 127.0.0.1:18443 ssl http2",
        "ssl_certificate": f"ssl_certificate {tmp}/fullchain.pem",
        "ssl_certificate_key": f"ssl_certificate_key {tmp}/privkey.pem",
    }


@pytest.mark.parametrize("service", sorted(COMMANDS))
def test_docker_compose_runs_the_commands_the_journey_runs(service):
    assert services()[service]["command"] == COMMANDS[service]


def test_docker_compose_gives_every_process_the_environment_names_the_journey_sets():
    for name in ("migrate", "web", "worker", "beat"):
        names = set(services()[name]["environment"])
        expected = ENV_NAMES | (WEB_ENV_NAMES if name == "web" else set())
        assert names == expected, f"{name}: {sorted(names ^ expected)}"
    assert services()["web"]["environment"]["KAMKEYS_TRUSTED_PROXY_COUNT"] == "1"


def test_docker_compose_runs_the_shipped_proxy_configuration_in_front_of_web():
    proxy = services()["proxy"]
    assert "./deploy/nginx.conf:/etc/kamkeys/nginx.conf:ro" in proxy["volumes"]
    assert proxy["command"][:3] == ["nginx", "-c", "/etc/kamkeys/nginx.conf"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert "web:8000" in SHIPPED_NGINX_CONF.read_text()
    assert "ports" not in services()["web"], "web is reached through the proxy only"
    assert "/healthz" in " ".join(services()["web"]["healthcheck"]["test"])


def test_the_image_builds_static_files_and_holds_the_gunicorn_configuration():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert " ".join(COLLECTSTATIC[1:]) in dockerfile
    assert GUNICORN_CONF.is_file()
    assert re.search(r"^COPY deploy \./deploy$", dockerfile, re.M), "the image lacks deploy/"


def test_the_image_holds_every_app_of_the_project_as_compiled_bytecode():
    """The workers import the apps from /app. api/ was missing from the COPY lines: the image
    only worked because ``pip install .`` had put a second copy into site-packages. And with
    PYTHONDONTWRITEBYTECODE set, nothing compiled /app: every worker (and every command)
    compiled each of the apps' modules from source as it started."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    apps = sorted(path.parent.name for path in ROOT.glob("*/apps.py"))
    assert "api" in apps
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert not set(apps) - copied, f"not in the image: {sorted(set(apps) - copied)}"
    compiled = re.search(r"python -m compileall -q ([\w ]+)", dockerfile)
    assert compiled and set(apps) <= set(compiled.group(1).split()), "apps left uncompiled"


def test_the_journey_changes_only_the_marked_lines_of_the_shipped_nginx_conf(tmp_path):
    shipped = SHIPPED_NGINX_CONF.read_text()
    rendered = render_nginx_conf(shipped, example_values(tmp_path))
    changed = [
        line
        for line in difflib.ndiff(shipped.splitlines(), rendered.splitlines())
        if line.startswith(("- ", "+ "))
    ]
    markers = [re.search(r"# deploy: (\w+)$", line).group(1) for line in changed]
    # Each marked line is replaced once, server_name twice (the http and the https server).
    assert sorted(markers) == sorted([*NGINX_SUBSTITUTIONS, "server_name"] * 2)
    assert shipped.count("# deploy:") == len(NGINX_SUBSTITUTIONS) + 1


def test_the_proxy_access_log_holds_no_query_string_cookie_or_referer():
    conf = SHIPPED_NGINX_CONF.read_text()
    log_format = re.search(r"log_format kamkeys (.*?);", conf, re.S).group(1)
    variables = set(re.findall(r"\$(\w+)", log_format))
    assert "kamkeys_log_uri" in variables
    leaky = {"request", "request_uri", "args", "query_string", "http_cookie", "http_referer"}
    assert not variables & leaky
    assert not any(v.startswith(("arg_", "cookie_", "sent_http_set_cookie")) for v in variables)
    assert re.search(r"^\s*access_log \S+ kamkeys;", conf, re.M), "every access log uses it"
    assert len(re.findall(r"^\s*access_log\s", conf, re.M)) == 1
    assert "proxy_add_x_forwarded_for" in conf and "X-Forwarded-Proto https" in conf


def _token_routes() -> list[str]:
    """Every URL of the site that carries a token or key in its path, as a literal prefix."""
    found = []

    def walk(patterns: list, prefix: str) -> None:
        for entry in patterns:
            route = str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + route.lstrip("^"))
            elif isinstance(entry, URLPattern) and re.search(
                r"<(?:str:|slug:)?(\w*key|token)", route
            ):
                literal = re.split(r"[<(]", route.lstrip("^"), maxsplit=1)[0]
                found.append(prefix + literal)

    walk(get_resolver().url_patterns, "/")
    return found


def test_every_token_bearing_path_is_redacted_in_the_proxy_access_log():
    routes = _token_routes()
    assert {
        "/accounts/register/activate/",
        "/read-rights/invitation/",
        "/accounts/password/reset/key/",
    } <= set(routes), routes
    conf = SHIPPED_NGINX_CONF.read_text()
    for route in routes:
        assert f'"~^{route}' in conf, f"{route} is logged with its token"
        assert f'"{route}[redacted]/";' in conf, f"{route} is logged with its token"


def test_the_proxy_redacts_by_the_same_rules_as_the_application_logs():
    from kamkeys.logredact import nginx_map

    conf = SHIPPED_NGINX_CONF.read_text()
    block = nginx_map()
    assert len(block.splitlines()) > 3, "kamkeys.logredact names no token path"
    indented = "\n".join(("    " + line) if line else line for line in block.splitlines())
    assert indented in conf, "deploy/nginx.conf's map differs from kamkeys.logredact.nginx_map()"


def test_the_shipped_nginx_conf_is_accepted_by_nginx(tmp_path):
    nginx = nginx_binary()
    require_service(nginx is not None, "needs Debian's nginx (apt-get install nginx-light)")
    make_certificates(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(SHIPPED_NGINX_CONF.read_text(), example_values(tmp_path)))
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "startup.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_proxy_lets_a_factory_file_just_over_the_import_pages_limit_reach_the_page():
    """The import page answers a file over its limit with what to do instead; elsewhere bodies
    stay capped at 6 MB (Django writes an upload to disk before a view checks who sent it)."""
    from django.urls import reverse

    from keyfiles.admin import IMPORT_UPLOAD_MAX_MB

    conf = SHIPPED_NGINX_CONF.read_text()
    assert re.search(r"^    client_max_body_size 6m;$", conf, re.M)
    block = re.search(r"location = (\S+) \{\s*client_max_body_size (\d+)m;(.*?)\}", conf, re.S)
    assert block, "no location for the import page"
    path, megabytes, body = block.group(1), int(block.group(2)), block.group(3)
    assert path == reverse("admin:keyvault_devicekey_import")
    assert IMPORT_UPLOAD_MAX_MB < megabytes <= IMPORT_UPLOAD_MAX_MB + 4
    assert "proxy_pass http://kamkeys_web;" in body
    assert "X-Forwarded-Proto https" in body and "X-Forwarded-For" in body
