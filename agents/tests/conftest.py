"""Fixtures for the agents tests: a private state directory with config.toml, and the fake sandbox state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents import jobs
from agents.lifecycle import status
from core.config import (
    Config,
    ModelsConfig,
    ProviderConfig,
    ServerConfig,
    clear_config_cache,
    load_config,
    save_config,
)
from sandbox import boxspec
from sandbox.providers.fake import DELAY_ENV, FAIL_ENV, LOG_FILE_NAME, STATE_FILE_NAME, FakeProvider

PROVIDER_NAME = "remote"
PROVIDER_BASE_URL = "https://llm.example.test/v1"
# Distinctive enough that finding it anywhere in a box spec is certainly a leak.
PROVIDER_API_KEY = "sk-provider-secret-7f3a9"
MODELS = ["gpt-5.4", "qwen2.5:7b"]
DEFAULT_SELECTOR = f"{PROVIDER_NAME}.gpt-5.4"
ACCESS_TOKEN = "shared-token"
BOX_BASE_URL = "http://box-host.test:18080"


@pytest.fixture
def csgclaw_home(tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory of this test only, so boxes and agent directories never leak between tests."""
    home = tmp_path / "home"
    home.mkdir()
    settings.CSGCLAW_HOME = home
    settings.CSGCLAW_CONFIG = home / "config.toml"
    monkeypatch.delenv(FAIL_ENV, raising=False)
    monkeypatch.delenv(DELAY_ENV, raising=False)
    # The status cache is per process; a refresh in an earlier test must not count as recent here.
    monkeypatch.setattr(status, "_refreshed_at", {})
    clear_config_cache()
    yield home
    clear_config_cache()


@pytest.fixture
def write_config(csgclaw_home: Path) -> Callable[..., Config]:
    """Write config.toml from [models] providers and a default; returns the config as loaded back."""

    def write(
        *,
        providers: dict[str, ProviderConfig] | None = None,
        default: str = DEFAULT_SELECTOR,
        advertise_base_url: str = BOX_BASE_URL,
    ) -> Config:
        if providers is None:
            providers = {
                PROVIDER_NAME: ProviderConfig(
                    name=PROVIDER_NAME,
                    base_url=PROVIDER_BASE_URL,
                    api_key=PROVIDER_API_KEY,
                    models=list(MODELS),
                    reasoning_effort="High",
                )
            }
        config = Config(
            server=ServerConfig(advertise_base_url=advertise_base_url, access_token=ACCESS_TOKEN),
            models=ModelsConfig(default=default, providers=providers),
        )
        save_config(config, csgclaw_home / "config.toml")
        clear_config_cache()
        return load_config(csgclaw_home / "config.toml")

    return write


@pytest.fixture
def agent_config(write_config: Callable[..., Config]) -> Config:
    """The standard config.toml: one provider `remote` with two models, default `remote.gpt-5.4`."""
    return write_config()


@dataclass
class FakeBoxes:
    """The fake provider's state of each agent, read from its runtime home as another process would."""

    home: Path

    def runtime_home(self, slug: str) -> Path:
        return boxspec.runtime_home(self.home, slug, "boxlite")

    def record(self, slug: str) -> dict[str, Any] | None:
        path = self.runtime_home(slug) / STATE_FILE_NAME
        return json.loads(path.read_text()) if path.exists() else None

    def operations(self, slug: str) -> list[str]:
        """The operations run on the agent's box, oldest first (`create`, `info`, `start`, ...)."""
        path = self.runtime_home(slug) / LOG_FILE_NAME
        if not path.exists():
            return []
        return [line.rsplit(" ", 1)[1] for line in path.read_text().splitlines()]

    def remove_behind_our_back(self, slug: str) -> None:
        runtime = FakeProvider().open(self.runtime_home(slug))
        runtime.remove(slug, force=True)

    def stop_behind_our_back(self, slug: str) -> None:
        runtime = FakeProvider().open(self.runtime_home(slug))
        runtime.get(slug).stop()


@pytest.fixture
def fake_boxes(csgclaw_home: Path) -> FakeBoxes:
    return FakeBoxes(csgclaw_home)


@pytest.fixture
def fail_sandbox(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the fake provider fail the named operations (none: stop failing)."""

    def fail(*operations: str) -> None:
        monkeypatch.setenv(FAIL_ENV, ",".join(operations))

    return fail


class HeldWrites:
    """Stands in for the background writes pool: keeps each job until the test runs them, in order."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], object]] = []

    def submit(self, fn: Callable[[], object]) -> Future:
        self.jobs.append(fn)
        return Future()

    def run(self) -> None:
        held, self.jobs = self.jobs, []
        for fn in held:
            fn()


@pytest.fixture
def held_writes(monkeypatch: pytest.MonkeyPatch) -> HeldWrites:
    """The writes the status observation leaves to the background, held back until `run()`."""
    held = HeldWrites()
    monkeypatch.setattr(jobs, "writes_pool", held)
    return held


def wait_until(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy (background threads, timers); fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def until() -> Callable[..., Any]:
    return wait_until
