"""The floor stays the floor: no module under core/ imports an app or any other package of this repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import core

pytestmark = pytest.mark.timeout(30)

CORE = Path(core.__file__).resolve().parent
REPOSITORY = CORE.parent
KNOWN_APPS = {"im", "agents", "bots", "sandbox", "csgclaw_site"}


def repository_packages() -> set[str]:
    """Every top-level package of the repository except the floor: apps added later are covered too."""
    return {path.parent.name for path in REPOSITORY.glob("*/__init__.py")} - {"core"}


def imported_packages(source: str) -> set[str]:
    """Top-level packages named by absolute `import` / `from … import` statements anywhere in `source`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_scan_sees_every_app() -> None:
    assert repository_packages() >= KNOWN_APPS


def test_the_scan_finds_imports_at_any_depth() -> None:
    source = (
        "import json\nfrom . import sibling\ndef f():\n    from im.models import Room\n    import bots.llm\n"
    )

    assert imported_packages(source) == {"json", "im", "bots"}


def test_no_module_under_core_imports_an_app() -> None:
    apps = repository_packages()
    offenders = {
        str(path.relative_to(REPOSITORY)): sorted(imported_packages(path.read_text()) & apps)
        for path in sorted(CORE.rglob("*.py"))
    }

    assert {path: names for path, names in offenders.items() if names} == {}
