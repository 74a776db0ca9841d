"""The API's documentation page works in a browser under the site's strict CSP: Swagger UI
comes from our own static files and lists every endpoint of the schema."""

from __future__ import annotations

import pytest


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_api_documentation_page_lists_the_endpoints_in_a_browser(page):
    blocked_scripts: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked_scripts.append(message.text) if "script-src" in message.text else None
        ),
    )
    page.goto("/api/v1/docs/")
    page.locator(".opblock-summary-path", has_text="/api/v1/keys/").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/api/v1/devices/", "/api/v1/read-rights/assign/", "/api/v1/audit/disclosures/"} <= {
        path.strip() for path in paths
    }
    assert not blocked_scripts
