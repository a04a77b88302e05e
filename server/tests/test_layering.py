"""The server process sits on top: no app imports `server`; only the project package wires it in."""

from __future__ import annotations

from pathlib import Path

import pytest

import server
from core.tests.test_layering import imported_packages

pytestmark = pytest.mark.timeout(30)

REPOSITORY = Path(server.__file__).resolve().parent.parent
# The project package wires the server's middleware and guards into settings and the ASGI app.
ALLOWED_IMPORTERS = {"server", "csgclaw_site"}


def repository_packages() -> set[str]:
    """Every top-level package of the repository, the floor included: apps added later are covered too."""
    return {path.parent.name for path in REPOSITORY.glob("*/__init__.py")}


def test_the_scan_sees_the_apps_and_the_floor() -> None:
    assert repository_packages() >= {"core", "im", "agents", "bots", "sandbox", "server", "csgclaw_site"}


def test_no_app_imports_server() -> None:
    offenders = sorted(
        str(path.relative_to(REPOSITORY))
        for package in repository_packages() - ALLOWED_IMPORTERS
        for path in (REPOSITORY / package).rglob("*.py")
        if "server" in imported_packages(path.read_text())
    )

    assert offenders == []
