"""axe-core (from the npm registry, node_modules/axe-core) on every page people use, in English
and in Danish: no serious or critical violation."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from kamkeys.demo import ensure_demo_totp
from keyvault.services import store_device_keys
from readrights import services as readrights_services
from tests.conftest import require_service
from tests.factories import (
    DEFAULT_PASSWORD,
    DeviceFactory,
    login,
    make_member,
    store_selection,
    web,
)

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
LANGUAGES = ("en-GB", "da-DK")
BLOCKING = {"serious", "critical"}

# (who, path): every page of the portal a person reaches, in its common state.
PAGES = [
    (None, "/accounts/login/"),
    (None, "/accounts/register/"),
    (None, "/accounts/password/reset/"),
    (None, "/read-rights/invitation/accept/"),  # the invitation page (session set below)
    ("super", "/devices/"),
    ("super", "/devices/?serial=63001"),
    ("super", "/devices/register/"),
    ("super", "/devices/paste/"),
    ("super", "/devices/remove/"),
    ("super", "/devices/download/"),
    ("super", "/read-rights/"),
    ("super", "/read-rights/assign/"),
    ("super", "/read-rights/users/"),
    ("super", "/accounts/password/change/"),
    ("super", "/accounts/email/"),
    ("super", "/accounts/2fa/"),
    ("super", "/no-such-page/"),
    ("customer", "/devices/"),
    ("customer", "/accounts/request-access/"),
    ("pending", "/accounts/2fa/authenticate/"),
]


def _violations(page) -> list[dict]:  # noqa: ANN001
    if not page.evaluate("() => typeof axe !== 'undefined'"):  # no init script (set_content)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    return [v for v in result if v["impact"] in BLOCKING]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_no_page_has_a_serious_or_critical_accessibility_violation_in_either_language(
    browser, live_server, super_user_x, org_x, customer_org, language
):
    require_service(AXE.exists(), "needs axe-core: npm ci (scripts/install runs it)")
    devices = [
        DeviceFactory(owner=org_x, serial=f"6300{n:04d}", device_type="MULTICAL 21")
        for n in range(12)
    ]
    for device in devices[:3]:
        store_device_keys(device, {"DEK": bytes(16)})
    customer = make_member(customer_org, email="clerk@utility.example")
    readrights_services.assign_read_rights(
        devices_qs=devices[0].__class__.objects.filter(pk__in=[devices[0].pk]),
        emails_in=[customer.email, "new.customer@utility.example"],
        context=web(super_user_x),
    )
    pending = make_member(customer_org, email="two.step@utility.example")
    ensure_demo_totp(pending)

    checked = 0
    found: dict[str, list[dict]] = {}
    sessions = {
        "super": login(Client(), super_user_x),
        "customer": login(Client(), customer),
    }
    for who in ("super", "customer"):
        store_selection(
            sessions[who],
            super_user_x if who == "super" else customer,
            [d.pk for d in devices[:3]] if who == "super" else [devices[0].pk],
        )
    # One browser context per person, its pages visited one after the other as that person
    # would (a new context per page would start a new renderer process each time).
    for who in dict.fromkeys(who for who, _ in PAGES):
        context = browser.new_context(base_url=live_server.url, locale=language, bypass_csp=True)
        # Chromium adds axe-core to every page itself: sent through Playwright's pipe with each
        # page, its 500 kB took as long as the check (2.1 of 9 s for the 20 pages).
        context.add_init_script(path=str(AXE))
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            if who in sessions:
                context.add_cookies(
                    [
                        {
                            "name": "sessionid",
                            "value": sessions[who].cookies["sessionid"].value,
                            "url": live_server.url,
                        }
                    ]
                )
            elif who == "pending":  # password done, the two-factor step next
                page.goto("/accounts/login/")
                page.locator("#id_login").fill(pending.email)
                page.locator("#id_password").fill(DEFAULT_PASSWORD)
                page.locator("main form button[type=submit]").click()
                page.wait_for_url("**/2fa/authenticate/")
            for path in (path for whose, path in PAGES if whose == who):
                page.goto(path)
                if who is not None:  # the page itself, not a detour to the login page
                    assert "/accounts/login/" not in page.url, (who, path, page.url)
                problems = _violations(page)
                checked += 1
                if problems:
                    found[f"{language} {who or 'visitor'} {path}"] = problems
        finally:
            context.close()
    print(
        f"\naxe-core ({language}): {checked} page views of {len(PAGES)} pages, "
        f"{sum(len(v) for v in found.values())} serious or critical violations"
    )
    assert not found, "\n".join(
        f"{where}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes'][:3]}"
        for where, problems in found.items()
        for v in problems
    )


@pytest.mark.browser
def test_the_check_finds_a_nameless_button_and_an_unlabelled_box(browser) -> None:  # noqa: ANN001
    require_service(AXE.exists(), "needs axe-core: npm ci (scripts/install runs it)")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(
            '<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
            '<button></button><input type="text"></main></body></html>'
        )
        assert {v["id"] for v in _violations(page)} >= {"button-name", "label"}
    finally:
        context.close()
