"""My devices on a 390 px phone: one header line, the account menu inside the screen, and a
table that scrolls sideways with the checkbox and serial number still in view."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import DeviceFactory, login, make_super_user

PHONE = {"width": 390, "height": 844}


def _inside_screen(box: dict) -> bool:
    return box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_my_devices_fits_a_390_px_phone(browser, live_server, org_x):
    user = make_super_user(
        org_x, email="procurement.department.north@skanderborg-forsyning.example", name=""
    )
    DeviceFactory.create_batch(30, owner=org_x, device_type="MULTICAL 21")
    client = login(Client(), user)
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, is_mobile=True)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    try:
        page.goto("/devices/")
        page.screenshot(path="/tmp/i18n-phone.png", full_page=True)
        # The page itself is no wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # The header is one line: brand, menu and account menu share one row.
        header = page.locator("header.topbar")
        brand = header.locator(".brand").bounding_box()
        menu = header.get_by_text("Menu").bounding_box()
        account = header.locator(".accountnav summary").bounding_box()
        assert header.bounding_box()["height"] < 60
        for box in (menu, account):
            assert abs(box["y"] + box["height"] / 2 - (brand["y"] + brand["height"] / 2)) < 8
            assert _inside_screen(box)

        # The account menu opens inside the screen, every entry readable.
        header.locator(".accountnav summary").click()
        for item in ("Email address", "Change password", "Log out"):
            entry = header.get_by_role("link", name=item).or_(
                header.get_by_role("button", name=item)
            )
            assert _inside_screen(entry.bounding_box()), item
        header.locator(".accountnav summary").click()

        # The main links are in the Menu.
        header.get_by_text("Menu").click()
        assert header.get_by_role("link", name="My devices").is_visible()
        header.get_by_text("Menu").click()

        # The table scrolls inside its box; checkbox and serial stay visible when it does.
        scroller = page.locator(".table-container")
        assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
        scroller.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
        row = page.locator("#device-table tbody tr").first
        checkbox = row.locator("input.row-select").bounding_box()
        serial = row.locator("td").nth(2).bounding_box()
        frame = scroller.bounding_box()
        for box in (checkbox, serial):
            assert box["x"] >= frame["x"] - 0.5
            assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 0.5
        assert serial["x"] >= checkbox["x"] + checkbox["width"]
        row.locator("input.row-select").check()
        page.locator("#selected-count", has_text="1").wait_for()
    finally:
        context.close()
