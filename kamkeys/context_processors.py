"""The navigation: only items whose pages exist and that the user may use are shown."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy

from accounts.selectors import is_super_user

# (label, url name, who sees it): "user" any signed-in user, "super_user" distributors only.
KEY_SERVICE_ITEMS = [(gettext_lazy("My devices"), "devices:list", "user")]
TOP_ITEMS = [(gettext_lazy("User Administration"), "readrights:user_admin", "super_user")]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_key_service": [], "nav_top": []}
    super_user = is_super_user(user)

    def visible(items: list[tuple[Any, str, str]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for label, name, audience in items:
            if audience == "super_user" and not super_user:
                continue
            url = reverse(name)
            out.append({"label": label, "url": url, "active": request.path.startswith(url)})
        return out

    return {
        "nav_key_service": visible(KEY_SERVICE_ITEMS),
        "nav_top": visible(TOP_ITEMS),
        "nav_is_super_user": super_user,
    }
