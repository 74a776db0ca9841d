"""Danish is complete and current: every marked string has a translation, the .po files hold
exactly what the code marks, the committed .mo files are compiled from them, and no template
holds a sentence that was never marked."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import require_service
from tests.i18n.po import Entry, read_po
from tests.i18n.scanner import unmarked_text

ROOT = Path(settings.BASE_DIR)
MESSAGES = ROOT / "locale" / "da" / "LC_MESSAGES"
DOMAINS = ("django", "djangojs")
SOURCES = ("accounts", "api", "audit", "devices", "kamkeys", "keyfiles", "keyvault", "readrights")


def _entries(domain: str) -> list[Entry]:
    return read_po(MESSAGES / f"{domain}.po")


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_marked_string_has_a_danish_translation(domain: str) -> None:
    entries = _entries(domain)
    missing = [
        e.msgid
        for e in entries
        if e.fuzzy or not e.msgstr or any(not text for text in e.msgstr.values())
    ]
    assert not missing, f"{len(missing)} strings lack a Danish translation: {missing[:20]}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_committed_mo_files_are_compiled_from_the_po_files(domain: str) -> None:
    with (MESSAGES / f"{domain}.mo").open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    for entry in _entries(domain):
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural:
            for index, text in entry.msgstr.items():
                assert catalog.get((key, index)) == text, f"stale .mo: {entry.msgid!r}"
        else:
            assert catalog.get(key) == entry.msgstr.get(0), f"stale .mo: {entry.msgid!r}"


def test_the_po_files_hold_exactly_what_the_code_marks(tmp_path: Path) -> None:
    """makemessages on a copy of the code: the same msgids as the committed files."""
    require_service(bool(shutil.which("xgettext")), "needs GNU gettext (apt-get install gettext)")
    copy = tmp_path / "kamkeys"
    copy.mkdir()
    for name in (*SOURCES, "templates", "locale"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "static").mkdir()
    shutil.copytree(ROOT / "static" / "js", copy / "static" / "js")
    for name in ("manage.py", "pyproject.toml"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "translations", copy / "scripts" / "translations")
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("DATABASE_URL", None)
    subprocess.run(
        ["bash", "scripts/translations", "--no-compile"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    for domain in DOMAINS:
        fresh = {
            (e.key, e.msgid_plural)
            for e in read_po(copy / "locale/da/LC_MESSAGES" / f"{domain}.po")
        }
        committed = {(e.key, e.msgid_plural) for e in _entries(domain)}
        assert not fresh - committed, (
            f"{domain}.po lacks (run scripts/translations): {sorted(fresh - committed)[:20]}"
        )
        assert not committed - fresh, (
            f"{domain}.po holds strings no longer in the code: {sorted(committed - fresh)[:20]}"
        )


def _templates() -> list[Path]:
    return sorted(
        p for p in (ROOT / "templates").rglob("*") if p.suffix in (".html", ".txt") and p.is_file()
    )


def test_no_template_holds_an_unmarked_sentence() -> None:
    found = {
        str(path.relative_to(ROOT)): pieces
        for path in _templates()
        if (pieces := unmarked_text(path.read_text(encoding="utf-8")))
    }
    assert not found, "unmarked text in templates:\n" + "\n".join(
        f"{name}: {pieces[:3]}" for name, pieces in found.items()
    )


def test_the_scanner_finds_an_unmarked_sentence_and_passes_a_marked_one() -> None:
    assert unmarked_text("<p>Hello there</p>") == ["Hello there"]
    assert unmarked_text('<a title="Open it">{% translate "Go" %}</a>') == ["Open it"]
    assert unmarked_text("<p>{% translate 'Hello' %} {{ name }} · kamkeys</p>") == []
    assert unmarked_text("{% blocktranslate %}Hi {{ x }}{% endblocktranslate %}") == []
    assert unmarked_text("{% comment %}A note{% endcomment %}<script>let a;</script>") == []
