"""A system check: the KEK ring loads, so a broken ring stops start-up with a clear message."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from keyvault.kek import KekRingError, get_kek_source


@register()
def kek_ring_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        get_kek_source().current()
    except KekRingError as exc:
        return [Error(f"The KEK ring cannot be used: {exc}", id="keyvault.E001")]
    return []
