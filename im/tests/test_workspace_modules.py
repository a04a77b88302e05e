"""The workspace's ES modules import one way: from the entry module down to the shared ones, in no circle."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

STATIC_IM = Path(__file__).resolve().parents[2] / "static" / "im"
ENTRY = "workspace.js"
IMPORT = re.compile(r'^import\s[^;]*?\sfrom\s+"\./([^"]+)";', re.MULTILINE | re.DOTALL)


def imports() -> dict[str, set[str]]:
    return {path.name: set(IMPORT.findall(path.read_text())) for path in sorted(STATIC_IM.glob("*.js"))}


@pytest.mark.timeout(10)
def test_every_import_names_a_module_of_the_workspace():
    graph = imports()

    missing = {(module, name) for module, names in graph.items() for name in names if name not in graph}

    assert graph[ENTRY]
    assert missing == set()


@pytest.mark.timeout(10)
def test_modules_import_in_no_circle():
    try:
        TopologicalSorter(imports()).prepare()
    except CycleError as error:
        # The sorter lists each module before the ones that import it; reversed, each imports the next.
        pytest.fail(f"workspace modules import in a circle: {' imports '.join(reversed(error.args[1]))}")


@pytest.mark.timeout(10)
def test_only_the_entry_module_is_imported_by_none():
    graph = imports()
    imported = set().union(*graph.values())

    assert set(graph) - imported == {ENTRY}
