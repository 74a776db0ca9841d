"""A double click on a form that acts (Register device, Confirm and assign, Accept, Complete
registration, Remove device) sends it once: the second click finds it on its way."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import login

SEND_TWICE = """() => {
  const form = document.querySelector("form[data-send-once]");
  return [1, 2].map(() => {
    const event = new Event("submit", {bubbles: true, cancelable: true});
    form.dispatchEvent(event);
    return event.defaultPrevented;
  });
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_second_click_on_register_device_sends_nothing_more(page, live_server, customer):
    client = login(Client(), customer)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto("/devices/register/")
    page.get_by_role("button", name="Register device").wait_for()
    assert page.evaluate(SEND_TWICE) == [False, True]  # the first goes, the second is held
