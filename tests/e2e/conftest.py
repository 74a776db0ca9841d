"""Real-browser fixtures: Playwright drives Debian's Chromium against pytest-django's live server.

Never `playwright install`: the browser is /usr/bin/chromium (CI installs Debian's package).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[object]:
    """One Chromium for the whole e2e package (each test still gets a fresh context: cookies,
    storage and downloads are per context); starting it takes a second or two."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test thread while it is started; the ORM
    # calls the tests make around it are still plain synchronous calls. Only for this package.
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:  # noqa: ANN001
    """A fresh browser context with downloads allowed; ``page.base_url`` is the live server."""
    context = browser.new_context(accept_downloads=True, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
