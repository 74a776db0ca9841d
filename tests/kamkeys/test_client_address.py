"""Who the client is, behind our reverse proxy: one rule for the audit log and the rate limits.

Behind one trusted proxy (nginx appends the peer it saw to X-Forwarded-For), the client is the
rightmost entry. Everything left of it was written by the client: forging it gains nothing.
"""

from __future__ import annotations

from kamkeys.clientip import address_from, client_address
from tests.kamkeys.test_settings import assert_one_clear_line, run_manage

PROXY = "10.0.0.2"  # nginx, as gunicorn sees it
ALICE = "198.51.100.7"
BOB = "198.51.100.8"


def through_proxy(client_ip: str, forged: str = "") -> dict[str, str]:
    """What gunicorn receives for a client's request that passed our one nginx."""
    xff = f"{forged}, {client_ip}" if forged else client_ip
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": xff}


def test_behind_one_trusted_proxy_the_client_is_the_rightmost_forwarded_entry(settings, rf):
    settings.KAMKEYS_TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", **through_proxy(ALICE, forged="6.6.6.6"))
    assert client_address(request) == ALICE


def test_without_a_trusted_proxy_forwarded_for_is_ignored(settings, rf):
    settings.KAMKEYS_TRUSTED_PROXY_COUNT = 0
    request = rf.get("/", REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_address(request) == ALICE


def test_two_trusted_proxies_take_the_second_entry_from_the_right():
    assert address_from(PROXY, f"6.6.6.6, {ALICE}, 10.0.0.9", 2) == ALICE
    # Too few entries: the request did not pass all our proxies; only the peer is known.
    assert address_from(PROXY, ALICE, 2) == PROXY


def test_garbage_in_forwarded_for_gives_no_address_rather_than_a_made_up_one():
    assert address_from(PROXY, "not-an-ip", 1) is None
    assert address_from(PROXY, "[2001:db8::1]:443", 1) == "2001:db8::1"
    assert address_from(PROXY, "203.0.113.4:5123", 1) == "203.0.113.4"


SHOW_PROXY_SETTINGS = (
    "from django.conf import settings; from allauth import app_settings as a; "
    "print(a.TRUSTED_PROXY_COUNT, getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
)


def test_the_trusted_proxy_count_reaches_allauth_and_only_then_is_x_forwarded_proto_believed(
    production_env,
):
    behind = run_manage(
        {**production_env, "KAMKEYS_TRUSTED_PROXY_COUNT": "1"}, "shell", "-c", SHOW_PROXY_SETTINGS
    )
    assert behind.stdout.strip().splitlines()[-1] == "1 ('HTTP_X_FORWARDED_PROTO', 'https')"
    direct = run_manage(production_env, "shell", "-c", SHOW_PROXY_SETTINGS)
    assert direct.stdout.strip().splitlines()[-1] == "0 None"


def test_a_malformed_trusted_proxy_count_stops_start_up_with_one_line(production_env):
    result = run_manage({**production_env, "KAMKEYS_TRUSTED_PROXY_COUNT": "one"})
    assert_one_clear_line(result, "KAMKEYS_TRUSTED_PROXY_COUNT")
