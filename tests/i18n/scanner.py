"""Finds text a person would read in a template that is not marked for translation.

The template is split with Django's own lexer; every tag and variable, every {% translate %} and
everything between {% blocktranslate %} and its end, and {% comment %} blocks are replaced with
a character that is no letter. What is left is parsed as HTML: any word in the text or in an
attribute people read (title, alt, placeholder, aria-label, data-confirm) is unmarked.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from django.template.base import Lexer, TokenType

READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-confirm", "aria-description"}
NOT_WORDS = {"kamkeys"}  # the product's name is the same in every language
WORD = re.compile(r"[^\W\d_]{2,}")
HOLE = "\x00"


def _blank_marked(source: str) -> str:
    out: list[str] = []
    inside: str | None = None  # "blocktranslate" or "comment"
    for token in Lexer(source).tokenize():
        words = token.contents.split()
        first = words[0] if words else ""
        if token.token_type == TokenType.BLOCK:
            if inside and first in (f"end{inside}", "endblocktrans"):
                inside = None
            elif inside is None and first in ("blocktranslate", "blocktrans", "comment"):
                inside = "blocktranslate" if first.startswith("blocktrans") else "comment"
            out.append(" ")  # a tag may sit inside an HTML tag: <fieldset{% if … %}…>
        elif token.token_type == TokenType.TEXT and inside is None:
            out.append(token.contents)
        else:
            out.append(HOLE)
    return "".join(out)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def _check(self, text: str) -> None:
        words = [w for w in WORD.findall(text) if w.lower() not in NOT_WORDS]
        if words:
            self.found.append(" ".join(text.replace(HOLE, "…").split()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        is_button = tag == "input" and dict(attrs).get("type") in ("submit", "button", "reset")
        for name, value in attrs:
            if value and (name in READ_ATTRIBUTES or (is_button and name == "value")):
                self._check(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._check(data)


def unmarked_text(source: str) -> list[str]:
    """The unmarked pieces of text of one template, as a reader would see them."""
    reader = _Reader()
    reader.feed(_blank_marked(source))
    reader.close()
    return reader.found
