"""Test doubles for sandbox runtimes; `FakeCli` drives an installed copy of `fake_cli.py`."""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

FAKE_CLI_SOURCE = Path(__file__).parent / "fake_cli.py"


@dataclass
class FakeCli:
    """One installed fake CLI: its path, what it was called with, and how it should answer."""

    path: Path
    log_path: Path
    scenario_path: Path

    @classmethod
    def install(cls, directory: Path, name: str) -> FakeCli:
        """Copy the fake as `<directory>/bin/<name>`, run by this interpreter."""
        bin_dir = directory / "bin"
        bin_dir.mkdir(exist_ok=True)
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n" + FAKE_CLI_SOURCE.read_text())
        path.chmod(0o755)
        return cls(
            path=path, log_path=directory / f"{name}-calls.jsonl", scenario_path=directory / f"{name}.json"
        )

    def answer(self, subcommand: str, *, stdout: str = "", stderr: str = "", exit: int = 0) -> None:
        scenario = json.loads(self.scenario_path.read_text()) if self.scenario_path.exists() else {}
        scenario[subcommand] = {"stdout": stdout, "stderr": stderr, "exit": exit}
        self.scenario_path.write_text(json.dumps(scenario))

    def inherited(self) -> list[dict[str, str | None]]:
        """Per call, the variables its `-e KEY` options took from the CLI's environment."""
        path = self.log_path.with_name(self.log_path.name + ".env")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def box_environment(self) -> dict[str, str | None]:
        """The box variables of the last call that set any: `-e KEY=VALUE` as given, `-e KEY` as inherited."""
        index = max(i for i, call in enumerate(self.calls()) if "-e" in call)
        call, inherited = self.calls()[index], self.inherited()[index]
        given = [value for flag, value in itertools.pairwise(call) if flag == "-e"]
        return dict(value.split("=", 1) if "=" in value else (value, inherited[value]) for value in given)

    def calls(self) -> list[list[str]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]
