"""Security S5 through the REST routes, on the real local provider: a box's links are never followed.

The box writes its home (`<agent home>/boxlite/home`) and its workspace, so whatever it plants there —
a link to config.toml, /dev/zero or a FIFO as its gateway log, a linked `.picoclaw` — must neither leak
through the logs route, hang it, nor make the server write its token-holding files anywhere else.
"""

from __future__ import annotations

import os
import stat
import time
import tracemalloc
from pathlib import Path

import pytest

from agents.models import Agent, AgentStatus
from core.config import (
    Config,
    ModelsConfig,
    ProviderConfig,
    SandboxConfig,
    ServerConfig,
    clear_config_cache,
    save_config,
)
from sandbox.boxspec import agent_dir, runtime_home
from sandbox.providers.local import LocalProvider

from .conftest import ACCESS_TOKEN, PROVIDER_API_KEY, PROVIDER_BASE_URL, PROVIDER_NAME

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

AGENTS = "/api/v1/agents"
FAKE_PICOCLAW = '#!/bin/sh\necho "picoclaw $*"\nsleep 30\n'


@pytest.fixture
def local_config(csgclaw_home: Path, tmp_path: Path, settings) -> SandboxConfig:
    """config.toml choosing the local provider (no isolation) with a fake PicoClaw that only sleeps."""
    picoclaw = tmp_path / "bin" / "picoclaw"
    picoclaw.parent.mkdir()
    picoclaw.write_text(FAKE_PICOCLAW)
    picoclaw.chmod(0o755)
    sandbox = SandboxConfig(provider="local", picoclaw_path=str(picoclaw), local_isolation="none")
    config = Config(
        server=ServerConfig(advertise_base_url="http://127.0.0.1:1", access_token=ACCESS_TOKEN),
        models=ModelsConfig(
            default=f"{PROVIDER_NAME}.gpt-5.4",
            providers={
                PROVIDER_NAME: ProviderConfig(
                    name=PROVIDER_NAME,
                    base_url=PROVIDER_BASE_URL,
                    api_key=PROVIDER_API_KEY,
                    models=["gpt-5.4"],
                )
            },
        ),
        sandbox=sandbox,
    )
    save_config(config, csgclaw_home / "config.toml")
    clear_config_cache()
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = ""
    return sandbox


@pytest.fixture
def alice(client, local_config: SandboxConfig, csgclaw_home: Path, django_capture_on_commit_callbacks):
    """Worker alice with a running local box; the box is removed afterwards so no process outlives us."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(AGENTS, {"name": "alice"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Agent.objects.get(pk="u-alice").status == AgentStatus.RUNNING
    runtime = LocalProvider(local_config).open(runtime_home(csgclaw_home, "alice", "boxlite"))
    yield runtime
    if runtime.state_path.exists():
        runtime.remove("alice", force=True)


def gateway_log(runtime) -> Path:
    return runtime.box_home / ".picoclaw" / "gateway.log"


def plant(path: Path, target: str | Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def logs(client, lines: int) -> tuple[int, str, float]:
    started = time.monotonic()
    response = client.get(f"{AGENTS}/u-alice/logs", {"lines": str(lines)})
    return response.status_code, response.content.decode(), time.monotonic() - started


def test_a_gateway_log_linked_to_config_toml_never_leaks_it(client, alice, csgclaw_home: Path) -> None:
    assert PROVIDER_API_KEY in (csgclaw_home / "config.toml").read_text()
    plant(gateway_log(alice), csgclaw_home / "config.toml")

    status, text, _ = logs(client, 50)

    assert (status, text) == (200, "")


@pytest.mark.timeout(10)
def test_a_fifo_as_gateway_log_answers_at_once_with_no_logs(client, alice) -> None:
    gateway_log(alice).unlink()
    os.mkfifo(gateway_log(alice))

    status, text, elapsed = logs(client, 5)

    assert (status, text) == (200, "")
    assert elapsed < 2


@pytest.mark.timeout(10)
def test_a_gateway_log_linked_to_dev_zero_answers_at_once_with_no_logs(client, alice) -> None:
    plant(gateway_log(alice), "/dev/zero")

    status, text, elapsed = logs(client, 5)

    assert (status, text) == (200, "")
    assert elapsed < 2


def test_a_50_mb_log_answers_five_lines_fast_and_small(client, alice) -> None:
    line = "x" * 99 + "\n"
    with gateway_log(alice).open("w") as log:
        for _ in range(50):
            log.write(line * 10_000)
        log.write("".join(f"last {n}\n" for n in range(5)))
    tracemalloc.start()
    try:
        status, text, elapsed = logs(client, 5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (status, text) == (200, "".join(f"last {n}\n" for n in range(5)))
    assert elapsed < 2
    # Reading the whole log would hold its 50 MB (and its lines) at once; the last MiB is all it may read.
    assert peak < 8 * 1024 * 1024


def test_a_linked_picoclaw_home_fails_the_box_and_writes_nothing_outside(
    client, alice, tmp_path: Path
) -> None:
    assert client.post(f"{AGENTS}/u-alice/stop").status_code == 200
    outside = tmp_path / "outside"
    outside.mkdir()
    picoclaw_home = alice.box_home / ".picoclaw"
    os.rename(picoclaw_home, tmp_path / "old-picoclaw")
    picoclaw_home.symlink_to(outside, target_is_directory=True)

    response = client.post(f"{AGENTS}/u-alice/start")

    assert response.status_code == 502
    agent = Agent.objects.get(pk="u-alice")
    assert (agent.status, agent.status_detail) == (
        AgentStatus.FAILED,
        "unsafe path in agent home: boxlite/home/.picoclaw",
    )
    assert list(outside.iterdir()) == []


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_agent_home_is_0700_and_the_servers_files_there_0600(alice, csgclaw_home: Path) -> None:
    home = agent_dir(csgclaw_home, "alice")

    assert mode_of(home) == 0o700
    for written in (
        alice.state_path,
        alice.launch_log_path,
        alice.box_home / ".picoclaw" / "config.json",
        alice.box_home / ".picoclaw" / ".security.yml",
    ):
        assert mode_of(written) == 0o600, written
