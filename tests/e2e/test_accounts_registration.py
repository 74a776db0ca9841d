"""A visitor registers end to end in a real browser: email, activation link, password, logged in."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import User

PASSWORD = "Quartz-Lantern-Meadow-47!"


def activation_link(address: str) -> str:
    messages = [m for m in mail.outbox if address in m.to]
    assert len(messages) == 1, [m.subject for m in mail.outbox]
    (link,) = re.findall(r"https?://\S+/accounts/register/activate/\S+/", messages[0].body)
    return link


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_visitor_registers_with_the_emailed_link_and_is_logged_in(page, live_server):
    mail.outbox.clear()
    page.goto("/")
    page.get_by_role("link", name="Register here").first.click()
    page.get_by_label("Email address").fill("Ingrid.Hansen@Example.org")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert not User.objects.filter(email="ingrid.hansen@example.org").exists()

    link = activation_link("ingrid.hansen@example.org")
    assert link.startswith(live_server.url)
    page.goto(link)
    page.get_by_role("heading", name="Complete registration").wait_for()
    assert page.url.endswith("/accounts/register/complete/")  # the token left the address bar

    page.get_by_label("Name (Optional)").fill("Ingrid Hansen")
    # Live feedback while typing, before any submit.
    page.get_by_label("Password", exact=True).fill("ingrid")
    page.locator("#rule-1.fail").wait_for()  # contains the name
    page.locator("#rule-2.fail").wait_for()  # character classes
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.locator("#rule-3.ok").wait_for()  # zxcvbn is happy
    assert page.locator(".rules li.fail").count() == 0

    # The server checks again: a mismatch is refused with a message on the field.
    page.get_by_label("Repeat password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Complete registration").click()
    page.get_by_text("The two passwords are not the same.").wait_for()
    assert not User.objects.filter(email="ingrid.hansen@example.org").exists()

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Complete registration").click()
    page.get_by_text("Your registration is complete and you are logged in.").wait_for()
    assert page.locator("ul.messages li").count() == 1  # one banner, not allauth's as well
    page.get_by_text("Ingrid Hansen").first.wait_for()  # the account menu

    user = User.objects.get(email="ingrid.hansen@example.org")
    assert user.name == "Ingrid Hansen" and user.is_active and user.check_password(PASSWORD)

    # The link is single use: in a fresh browser it says so and offers log in and reset.
    other = page.context.browser.new_context(base_url=live_server.url)
    try:
        again = other.new_page()
        again.goto(link)
        again.get_by_role("heading", name="Link already used").wait_for()
        again.get_by_role("link", name="Reset your password").wait_for()
    finally:
        other.close()
