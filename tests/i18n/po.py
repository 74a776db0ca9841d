"""A small reader of gettext .po files as makemessages writes them (one blank line between
entries): msgids, plural forms, contexts and fuzzy flags."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$')


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    fuzzy: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return self.msgctxt, self.msgid


def _entry(block: list[str], path: Path) -> Entry | None:
    entry = Entry()
    target: tuple[str, int] | None = None
    for line in block:
        if line.startswith("#~"):
            return None  # obsolete
        if line.startswith("#,"):
            entry.fuzzy = "fuzzy" in line
            continue
        if line.startswith("#"):
            continue
        found = KEYWORD.match(line)
        if found:
            name, index, text = found.group(1), found.group(2), found.group(3)
            target = ("msgstr", int(index or 0)) if name.startswith("msgstr") else (name, 0)
            if name == "msgctxt":
                entry.msgctxt = ""
        else:
            text = line
        assert target is not None, f"{path}: a string without a keyword: {line!r}"
        value = ast.literal_eval(text)
        kind, index_ = target
        if kind == "msgid":
            entry.msgid += value
        elif kind == "msgid_plural":
            entry.msgid_plural += value
        elif kind == "msgctxt":
            entry.msgctxt = (entry.msgctxt or "") + value
        else:
            entry.msgstr[index_] = entry.msgstr.get(index_, "") + value
    return entry if entry.msgid else None


def read_po(path: Path) -> list[Entry]:
    """The live entries (not obsolete ones); the header (msgid "") is left out."""
    entries: list[Entry] = []
    block: list[str] = []
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if line:
            block.append(line)
            continue
        if block:
            entry = _entry(block, path)
            if entry is not None:
                entries.append(entry)
            block = []
    return entries
