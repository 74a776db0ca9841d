"""The lock files are what every script and CI install: they must match pyproject.toml's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {
        canonicalize_name(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.MULTILINE)
    }


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(spec) for spec in specs]


def _mismatches(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    problems = []
    for requirement in requirements:
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not pinned")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} is outside {requirement.specifier}")
    return problems


def test_runtime_lock_pins_every_dependency_within_its_range() -> None:
    assert _mismatches(_requirements(), _pins("requirements.txt")) == []


def test_test_lock_pins_runtime_and_test_tools_alike() -> None:
    runtime, test = _pins("requirements.txt"), _pins("requirements-test.txt")
    assert _mismatches(_requirements() + _requirements("test"), test) == []
    assert {name: version for name, version in test.items() if name in runtime} == runtime


def test_every_pin_carries_a_hash() -> None:
    for lock in ("requirements.txt", "requirements-test.txt"):
        blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", (ROOT / lock).read_text())
        unhashed = [b.split()[0] for b in blocks if "==" in b.split()[0] and "--hash" not in b]
        assert unhashed == [], f"{lock}: pins without a hash: {unhashed}"
