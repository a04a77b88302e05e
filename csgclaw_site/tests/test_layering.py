"""design.md §2's layering as import contracts in pyproject.toml: they pass, cover every package, and bite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.api import read_configuration

import csgclaw_site

pytestmark = pytest.mark.timeout(60)

REPOSITORY = Path(csgclaw_site.__file__).resolve().parent.parent
PYPROJECT = REPOSITORY / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(directory: Path, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the packages in `directory` with the repository's contracts, without a cache."""
    selection = [argument for contract_id in contract_ids for argument in ("--contract", contract_id)]
    # The linter finds root packages on sys.path; the directory must come first and nothing else may
    # shadow it.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selection, str(PYPROJECT)],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=50,
    )


def configuration() -> tuple[set[str], dict[str, dict]]:
    options = read_configuration(str(PYPROJECT))
    contracts = {contract["id"]: contract for contract in options["contracts_options"]}
    return set(options["session_options"]["root_packages"]), contracts


def repository_packages() -> set[str]:
    return {path.parent.name for path in REPOSITORY.glob("*/__init__.py")}


def test_the_contracts_hold() -> None:
    result = lint_imports(REPOSITORY)

    broken = result.stdout.partition("Broken contracts")[2] or result.stdout + result.stderr
    assert result.returncode == 0, broken


def test_every_package_of_the_repository_is_in_the_graph() -> None:
    roots, _ = configuration()

    assert roots == repository_packages()


@pytest.mark.parametrize("contract_id", ["floor", "agent-runtime"])
def test_the_leaves_are_forbidden_every_other_package(contract_id: str) -> None:
    """A package added later is forbidden to the floor and to agent_runtime without editing the contract."""
    roots, contracts = configuration()
    contract = contracts[contract_id]

    forbidden = set(contract["forbidden_modules"]) - {"django"}
    assert forbidden == roots - set(contract["source_modules"])


@pytest.fixture
def skeleton(tmp_path: Path) -> Path:
    """An empty package for every root of the graph, with a `tests` package in each."""
    roots, _ = configuration()
    for name in roots:
        (tmp_path / name / "tests").mkdir(parents=True)
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "tests" / "__init__.py").write_text("")
    return tmp_path


def test_the_skeleton_keeps_every_contract(skeleton: Path) -> None:
    result = lint_imports(skeleton)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "statement", "contract_id"),
    [
        ("im/back.py", "import agents.models", "apps"),
        ("agents/back.py", "from bots import models", "apps"),
        ("bots/back.py", "import server", "apps"),
        ("server/back.py", "import csgclaw_site.settings", "apps"),
        ("im/back.py", "import sandbox", "apps"),
        ("core/back.py", "import im", "floor"),
        ("core/tests/test_back.py", "import agents", "floor"),
        ("bots/box.py", "import sandbox.providers", "sandbox"),
        ("im/tests/test_back.py", "import server", "server"),
        ("bench/back.py", "import server", "server"),
        ("agent_runtime/back.py", "import django.conf", "agent-runtime"),
        ("agent_runtime/back.py", "import core", "agent-runtime"),
    ],
)
def test_a_contract_breaks_on_an_arrow_it_forbids(
    skeleton: Path, module: str, statement: str, contract_id: str
) -> None:
    (skeleton / module).write_text(f"{statement}\n")

    result = lint_imports(skeleton, contract_id)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stdout


def test_tests_may_import_any_app(skeleton: Path) -> None:
    (skeleton / "im" / "tests" / "test_back.py").write_text("import bots\nimport sandbox\n")

    result = lint_imports(skeleton, "apps", "sandbox")

    assert result.returncode == 0, result.stdout + result.stderr
