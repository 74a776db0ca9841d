"""The devices journey in Danish, with the keyboard only: a Danish browser finds Mine enheder,
searches by serial, ticks two meters, downloads the file and reads the README in Danish. The
same page is photographed for docs/ at desktop and phone width."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import pyzipper
from django.conf import settings
from django.test import Client

from keyvault.services import store_device_keys
from tests.factories import DeviceFactory, login

PASSWORD = "Fire ord til én nøglefil 2026!"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def tab_to(page, selector: str, limit: int = 120) -> None:  # noqa: ANN001
    """Press Tab until the element matching ``selector`` has the focus (a keyboard user's way
    there); fail if it is never reached."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(
            "s => document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def _danish_context(browser, live_server, user, **options):  # noqa: ANN001, ANN202
    client = login(Client(), user)
    context = browser.new_context(
        base_url=live_server.url, locale="da-DK", accept_downloads=True, **options
    )
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_danish_distributor_searches_selects_and_downloads_with_the_keyboard(
    browser, live_server, super_user_x, org_x
):
    for serial in ("63001468", "63001634", "63001700"):
        device = DeviceFactory(owner=org_x, serial=serial, device_type="MULTICAL 21")
        store_device_keys(device, {"DEK": bytes.fromhex(serial * 4)})
    DeviceFactory.create_batch(20, owner=org_x, device_type="flowIQ 2200")
    context, page = _danish_context(browser, live_server, super_user_x)
    try:
        page.goto("/devices/")
        assert page.locator("html").get_attribute("lang") == "da"
        assert page.get_by_role("heading", level=1).inner_text() == "Mine enheder"
        assert "Antal enheder i din søgning" in page.locator(".device-counts").inner_text()

        # Search by serial with the keyboard.
        tab_to(page, "#id_serial")
        page.keyboard.type("63001")
        page.keyboard.press("Enter")
        page.wait_for_url("**serial=63001**")
        assert page.locator("#search-count").inner_text() == "3"

        # Tick two meters with the space bar.
        for serial in ("63001468", "63001634"):
            tab_to(page, f'input.row-select[aria-label="Vælg {serial}"]')
            page.keyboard.press("Space")
        page.locator("#selected-count", has_text="2").wait_for()

        # On to Download file (Download fil), and the file.
        tab_to(page, "#download-link")
        page.keyboard.press("Enter")
        page.wait_for_url("**/devices/download/")
        assert page.get_by_role("heading", level=1).inner_text() == "Download fil"
        tab_to(page, "#id_password")
        page.keyboard.type(PASSWORD)
        tab_to(page, "#id_password_repeat")
        page.keyboard.type(PASSWORD)
        with page.expect_download() as info:
            page.keyboard.press("Enter")
        name = info.value.suggested_filename
        made = page.get_by_role("status").filter(has_text="er lavet")
        made.wait_for()
        assert made.inner_text() == f"Filen {name} er lavet med nøglerne for 2 enheder."
        data = Path(info.value.path()).read_bytes()
        with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
            archive.setpassword(PASSWORD.encode())
            readme = archive.read("README.txt").decode()
            rows = archive.read("keys.csv").decode().strip().splitlines()[1:]
        assert readme.startswith("kamkeys-nøglefil")
        assert "Opbevar denne fil og dens adgangskode hver for sig" in readme
        assert sorted(row.split(",")[0] for row in rows) == ["63001468", "63001634"]

        # The header offers English; choosing it keeps the choice.
        page.get_by_role("button", name="English").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Download file"
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_mine_enheder_is_photographed_at_desktop_and_phone_width(
    browser, live_server, super_user_x, org_x
):
    """docs/screenshots/mine-enheder-*.png; rewritten only with KAMKEYS_SCREENSHOTS=1."""
    for n in range(30):
        DeviceFactory(owner=org_x, serial=f"6300{n:04d}", device_type="MULTICAL 21")
    for name, viewport in (
        ("desktop", {"width": 1280, "height": 800}),
        ("phone", {"width": 390, "height": 844}),
    ):
        context, page = _danish_context(browser, live_server, super_user_x, viewport=viewport)
        try:
            page.goto("/devices/")
            page.get_by_label("Vælg 63000001").check()
            page.locator("#selected-count", has_text="1").wait_for()
            shot = page.screenshot(full_page=False)
            assert shot[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("KAMKEYS_SCREENSHOTS") == "1":
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                (SCREENSHOTS / f"mine-enheder-{name}.png").write_bytes(shot)
        finally:
            context.close()
