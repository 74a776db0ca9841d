"""The portal's languages and a person's language: pages, emails and the choice in the header."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import translation


def supported(code: str | None) -> str:
    """The code of settings.LANGUAGES this stands for ("da-DK" → "da"), or "" for none."""
    if not code:
        return ""
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return ""


def language_of(user: Any) -> str:
    """The language to write to this person in: their choice, else the language now active
    (the browser's, for somebody who never chose)."""
    return (
        supported(getattr(user, "language", ""))
        or translation.get_language()
        or (settings.LANGUAGE_CODE)
    )
