"""A customer registers a distributor's meter with serial + device code; the distributor sees it
in User Administration and ends it; the meter leaves the customer's My devices at once."""

from __future__ import annotations

import pytest
from django.test import Client

from devices.device_codes import hash_device_code
from devices.models import DeviceRegistration
from tests.factories import DeviceFactory, login

SERIAL = "63001468"


def _browser_session(browser, live_server, user):  # noqa: ANN001, ANN202
    """A browser context logged in as ``user`` (password and TOTP just done)."""
    client = login(Client(), user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_distributor_ends_a_customers_own_registration_and_the_meter_leaves_their_list(
    browser, live_server, super_user_x, customer, org_x
):
    DeviceFactory(owner=org_x, serial=SERIAL, device_code_hash=hash_device_code(SERIAL, "42"))
    customer_context, mine = _browser_session(browser, live_server, customer)
    owner_context, theirs = _browser_session(browser, live_server, super_user_x)
    try:
        # The customer types the serial and the code from the meter's label.
        mine.goto("/devices/register/")
        mine.get_by_label("Serial number").fill(SERIAL)
        mine.get_by_label("Device code").fill("42")
        mine.get_by_role("button", name="Register device").click()
        mine.wait_for_url("**/devices/")
        assert mine.locator("#search-count").inner_text() == "1"

        # The owner sees who registered it, and ends it after confirming.
        theirs.goto("/read-rights/users/")
        row = theirs.get_by_role("row").filter(has_text=customer.email)
        assert SERIAL in row.inner_text()
        theirs.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="End registration").click()
        theirs.wait_for_url("**/read-rights/users/")
        assert "no longer has access to device" in theirs.locator("main").inner_text()
        assert DeviceRegistration.objects.get().ended_by == super_user_x

        # Gone from the customer's list at once.
        mine.reload()
        assert mine.locator("#search-count").inner_text() == "0"
        assert SERIAL not in mine.locator("main").inner_text()
    finally:
        customer_context.close()
        owner_context.close()
