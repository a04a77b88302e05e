"""Fixtures for the sandbox tests: a fake runtime CLI and a state directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.tests.factories import PROVIDER_BASE_URL, PROVIDER_KEY
from sandbox.tests.fakes import FakeCli


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "subprocess: spawns real processes (fake CLIs, host gateways)")


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FakeCli]:
    """Install the fake CLI under a name (`boxlite`, `docker`) and point its log and scenario at tmp_path."""

    def install(name: str) -> FakeCli:
        cli = FakeCli.install(tmp_path, name)
        monkeypatch.setenv("FAKE_CLI_LOG", str(cli.log_path))
        monkeypatch.setenv("FAKE_CLI_SCENARIO", str(cli.scenario_path))
        return cli

    return install


@pytest.fixture
def csgclaw_home(tmp_path: Path) -> Path:
    home = tmp_path / "csgclaw-home"
    home.mkdir()
    return home


@pytest.fixture
def provider_in_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs with its model provider's key and URL in its own environment, under box names."""
    for key in ("OPENAI_API_KEY", "CSGCLAW_LLM_API_KEY", "PICOCLAW_CUSTOM_MODEL_API_KEY"):
        monkeypatch.setenv(key, PROVIDER_KEY)
    for key in ("OPENAI_BASE_URL", "CSGCLAW_LLM_BASE_URL"):
        monkeypatch.setenv(key, PROVIDER_BASE_URL)
