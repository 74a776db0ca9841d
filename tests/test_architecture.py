"""The apps import each other only along the layering written in docs/architecture.md.

Every ``import`` in the apps' Python files (read with ``ast``, including imports inside
functions, and ``importlib.import_module("literal")``) is checked: an app may import the apps
below it; anything else must be one of the known exceptions, named module by module, so a new
arrow fails here even from a module that already has one. The tables are written once here and
once in the document; the test fails when they disagree.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
APPS = ("kamkeys", "audit", "keyvault", "accounts", "devices", "keyfiles", "readrights", "api")

# Which apps each app may import: the ones below it (kamkeys < audit < keyvault < accounts <
# devices < keyfiles < readrights < api). Mirrored in docs/architecture.md between the
# "allowed-imports" markers.
ALLOWED: dict[str, set[str]] = {
    "kamkeys": set(),
    "audit": {"kamkeys"},
    "keyvault": {"kamkeys", "audit"},
    "accounts": {"kamkeys", "audit", "keyvault"},
    "devices": {"kamkeys", "audit", "keyvault", "accounts"},
    "keyfiles": {"kamkeys", "audit", "keyvault", "accounts", "devices"},
    "readrights": {"kamkeys", "audit", "keyvault", "accounts", "devices", "keyfiles"},
    "api": {"kamkeys", "audit", "keyvault", "accounts", "devices", "keyfiles", "readrights"},
}

# Imports against the layering that exist today, (importing module, imported module). Mirrored
# in docs/architecture.md between the "import-exceptions" markers, with the reason for each.
EXCEPTIONS: set[tuple[str, str]] = {
    # The project shell: the middleware and navigation ask for the user's role; demo data.
    ("kamkeys.context_processors", "accounts.selectors"),
    ("kamkeys.admin_site", "accounts.access"),
    ("kamkeys.middleware", "accounts.selectors"),
    ("kamkeys.management.commands.seed_demo", "accounts.models"),
    ("kamkeys.management.commands.seed_demo", "devices.models"),
    ("kamkeys.management.commands.seed_demo", "devices.device_codes"),
    ("kamkeys.management.commands.seed_demo", "keyvault.services"),
    ("kamkeys.management.commands.seed_demo", "readrights.models"),
    # Who may see a device depends on read rights: the access module alone knows them.
    ("devices.access", "readrights.models"),
}


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module, e.g. "keyfiles.downloads"
    target: str  # imported module, e.g. "devices.models"
    line: int

    @property
    def source_app(self) -> str:
        return self.source.split(".")[0]

    @property
    def target_app(self) -> str:
        return self.target.split(".")[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Absolute module names a file imports, with line numbers. ``from pkg import name`` counts
    as ``pkg.name`` when that is a module of the repository, else as ``pkg``."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((candidate if _is_module(candidate) else node.module, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return found


def cross_app_arrows() -> list[Arrow]:
    arrows = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            source = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for target, line in imported_modules(tree):
                if target.split(".")[0] in APPS and target.split(".")[0] != app:
                    arrows.append(Arrow(source, target, line))
    return arrows


def forbidden(arrows: list[Arrow]) -> list[Arrow]:
    return [
        arrow
        for arrow in arrows
        if arrow.target_app not in ALLOWED[arrow.source_app]
        and (arrow.source, arrow.target) not in EXCEPTIONS
    ]


def _doc_block(name: str) -> list[list[str]]:
    """The rows of the Markdown table between <!-- name --> and <!-- /name -->, cells without
    backticks; the header and separator rows are left out."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name} -->(.*?)<!-- /{name} -->", text, re.S)
    assert match, f"docs/architecture.md has no <!-- {name} --> block"
    rows = [line.strip() for line in match.group(1).splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip().replace("`", "") for cell in row.strip("|").split("|")] for row in rows]
    return cells[2:]


def _names(cell: str) -> set[str]:
    return {name.strip() for name in cell.split(",") if name.strip() not in {"", "—", "-"}}


# --- tests -----------------------------------------------------------------------------------


def test_no_app_imports_an_app_it_is_not_allowed_to():
    bad = forbidden(cross_app_arrows())
    assert not bad, (
        "New imports against the layering in docs/architecture.md (move the code, or, if the "
        "arrow is right, change the layering in the document and in this test):\n"
        + "\n".join(f"  {a.source} (line {a.line}) imports {a.target}" for a in bad)
    )


def test_every_listed_exception_is_still_needed():
    used = {(arrow.source, arrow.target) for arrow in cross_app_arrows()}
    stale = sorted(EXCEPTIONS - used)
    assert not stale, (
        "These exceptions no longer match an import: delete them here and in "
        f"docs/architecture.md: {stale}"
    )


def test_every_listed_exception_goes_against_the_layering():
    redundant = sorted(
        (source, target)
        for source, target in EXCEPTIONS
        if target.split(".")[0] in ALLOWED[source.split(".")[0]]
    )
    assert not redundant, f"allowed by the layering anyway, so not exceptions: {redundant}"


def test_the_layering_has_no_cycles():
    order = list(APPS)
    for app, allowed in ALLOWED.items():
        assert all(order.index(other) < order.index(app) for other in allowed), app


def test_the_document_lists_the_same_allowed_imports():
    documented = {row[0]: _names(row[1]) for row in _doc_block("allowed-imports")}
    assert documented == ALLOWED


def test_the_document_lists_the_same_exceptions():
    documented = {
        (row[0], target) for row in _doc_block("import-exceptions") for target in _names(row[1])
    }
    assert documented == EXCEPTIONS


@pytest.mark.parametrize(
    ("source", "code", "bad"),
    [
        ("keyvault/crypto.py", "from readrights.models import ReadRight\n", True),
        ("keyvault/services.py", "from devices.access import visible_devices\n", True),
        ("accounts/models.py", "def f():\n    import devices.models\n", True),
        ("accounts/models.py", "importlib.import_module('readrights.models')\n", True),
        ("readrights/models.py", "from devices.models import Device\n", False),
        ("keyvault/services.py", "from devices.models import Device\n", True),
        ("keyvault/services.py", "from keyfiles.keystream import iter_plain_keys\n", True),
        ("devices/views.py", "from keyfiles.downloads import build_download\n", True),
        ("keyfiles/downloads.py", "from devices.models import Device\n", False),
        ("devices/views.py", "from audit import services\n", False),
        ("audit/services.py", "from keyvault.models import DeviceKey\n", True),
        ("api/views.py", "from readrights.services import clean_emails\n", False),
        ("readrights/views.py", "from api.models import ApiToken\n", True),
    ],
)
def test_the_check_sees_a_new_arrow(source, code, bad):
    """The checker itself: a new arrow is caught, even from a module with an exception."""
    module = _module_name(ROOT / source)
    arrows = [
        Arrow(module, target, line)
        for target, line in imported_modules(ast.parse(code))
        if target.split(".")[0] != module.split(".")[0]
    ]
    assert arrows
    assert bool(forbidden(arrows)) is bad
