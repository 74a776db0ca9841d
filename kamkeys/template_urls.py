"""``{% url %}`` with the answers for URL names without arguments kept per process.

A template builtin (``TEMPLATES[...]["OPTIONS"]["builtins"]``) that replaces Django's own ``url``
tag: it parses exactly as Django's and, for a name with no arguments, asks ``reverse()`` once per
URL configuration, script prefix and current app (a page of My devices has fifteen such links,
each reversed on every request). Names with arguments, ``as var`` and failures go through
Django's tag unchanged.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.template import defaulttags
from django.template.base import Parser, Token
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()

_REVERSED: dict[tuple[Any, ...], str] = {}
# Bounded: names come from templates, but a variable as the name could be anything.
MAX_KEPT = 1000


class KeptURLNode(defaulttags.URLNode):
    def render(self, context: Any) -> str:
        if self.args or self.kwargs or self.asvar:
            return super().render(context)
        view_name = self.view_name.resolve(context)
        if not isinstance(view_name, str):
            return super().render(context)
        try:  # as Django's tag finds it
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        key = (
            view_name,
            current_app,
            get_urlconf() or settings.ROOT_URLCONF,
            get_script_prefix(),
        )
        url = _REVERSED.get(key)
        if url is None:
            url = reverse(view_name, current_app=current_app)  # NoReverseMatch: as Django's
            if len(_REVERSED) < MAX_KEPT:
                _REVERSED[key] = url
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser: Parser, token: Token) -> KeptURLNode:
    node = defaulttags.url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)
