"""A real built-in runtime under the local provider against a live server (builtin-runtime.md §2.4, §7.2).

The runtime is the real `agent_runtime`, started by the real local provider; the server is a Daphne
subprocess. Stopping the server must flip the runtime's status file to `connected: false`, and the
provider must then say so in the box detail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from csgclaw_site.testing.live import LiveServer, LiveState
from sandbox.boxspec import box_environment, build_box_spec
from sandbox.providers import local_runtime
from sandbox.providers.local import LocalProvider
from sandbox.tests.factories import IMAGE, sandbox_config

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

TOKEN = "status-live-token"


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def read_status(home: Path) -> dict:
    try:
        return json.loads((home / ".picoclaw" / "runtime-status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.fixture
def server(live_state_factory: Callable[..., LiveState], daphne_factory) -> LiveServer:
    state = live_state_factory()
    (state.home / "config.toml").write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    return daphne_factory(state=state)


@pytest.fixture
def runtime_box(tmp_path: Path, server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("CSGCLAW_RUNTIME_BACKOFF_SCALE", "0.01")
    monkeypatch.setenv("CSGCLAW_RUNTIME_HEALTH_ADDR", "off")
    provider = LocalProvider(sandbox_config(runtime="builtin", local_isolation="none"))
    runtime = provider.open(tmp_path / "alice" / "local")
    environment = box_environment(
        base_url=server.base_url, access_token=TOKEN, bot_id="u-alice", model_id="some-model"
    )
    spec = build_box_spec(
        home=tmp_path, slug="alice", agent_id="u-alice", image=IMAGE, environment=environment
    )
    box = runtime.create(spec)
    try:
        yield box, runtime.box_home
    finally:
        runtime.remove(spec.name, force=True)


def test_stopping_the_server_shows_the_runtime_not_connected(server, runtime_box, monkeypatch):
    box, box_home = runtime_box
    wait_for(lambda: read_status(box_home).get("connected"), "the runtime to connect")
    assert box.info().detail == "built-in runtime"

    server.stop()
    wait_for(lambda: read_status(box_home).get("connected") is False, "connected: false in the status file")
    monkeypatch.setattr(local_runtime, "RUNTIME_NOT_CONNECTED_AFTER", 0.5)
    time.sleep(0.6)

    detail = box.info().detail
    assert detail.startswith("built-in runtime; runtime not connected: ")
    assert read_status(box_home)["last_error"] in detail
    assert TOKEN not in json.dumps(read_status(box_home))
