"""Template helpers of the accounts pages (also used in the allauth template overrides)."""

from __future__ import annotations

from django import template

from accounts.passwords import password_rules as _password_rules

register = template.Library()


@register.simple_tag
def password_rules() -> list[dict[str, str]]:
    """The password policy as a list of rules, for pages whose view is allauth's."""
    return _password_rules()
