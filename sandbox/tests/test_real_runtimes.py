"""Opt-in integration tests against real runtimes (sandbox.md §10): BoxLite (CLI and SDK) and Docker.

They need what this project's CI machine does not have (KVM for BoxLite, a Docker daemon, registry
access), so each provider runs only when asked:

    CSGCLAW_IT_BOXLITE_CLI=1  CSGCLAW_IT_BOXLITE_SDK=1  CSGCLAW_IT_DOCKER=1

`CSGCLAW_IT_IMAGE` picks the image (default `alpine:3.20`: any image with `sh`, `tail` and `sleep`);
`CSGCLAW_IT_BOXLITE_CLI_PATH` and `CSGCLAW_IT_DOCKER_PATH` the executables. Each test creates its own
uniquely named box and removes it, also when it fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.providers import get_provider
from sandbox.providers.base import (
    GATEWAY_LOG_GUEST_PATH,
    Box,
    BoxNotFound,
    BoxSpec,
    Mount,
    SandboxRuntime,
)
from sandbox.tests.factories import sandbox_config

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(600)]

IMAGE = os.environ.get("CSGCLAW_IT_IMAGE", "alpine:3.20")
WORKSPACE_GUEST_PATH = "/home/picoclaw/.picoclaw/workspace"
READY_LINE = "csgclaw integration box ready"
# Writes the gateway log the way PicoClaw's box command does, then stays up until stopped.
BOX_COMMAND = [
    "sh",
    "-c",
    f"mkdir -p {Path(GATEWAY_LOG_GUEST_PATH).parent} && echo '{READY_LINE}' >> {GATEWAY_LOG_GUEST_PATH}"
    " && exec sleep 600",
]


def opted_in(variable: str, provider: str, **config: str):
    return pytest.param(
        (provider, config),
        id=provider,
        marks=pytest.mark.skipif(
            os.environ.get(variable) != "1", reason=f"real {provider} runtime: set {variable}=1 to run"
        ),
    )


RUNTIMES = [
    opted_in(
        "CSGCLAW_IT_BOXLITE_CLI",
        "boxlite-cli",
        boxlite_cli_path=os.environ.get("CSGCLAW_IT_BOXLITE_CLI_PATH", "boxlite"),
    ),
    opted_in("CSGCLAW_IT_BOXLITE_SDK", "boxlite-sdk"),
    opted_in("CSGCLAW_IT_DOCKER", "docker", docker_path=os.environ.get("CSGCLAW_IT_DOCKER_PATH", "docker")),
]


@pytest.fixture(params=RUNTIMES)
def runtime(request, tmp_path: Path) -> Iterator[SandboxRuntime]:
    provider, config = request.param
    opened = get_provider(sandbox_config(provider=provider, **config)).open(tmp_path / "runtime-home")
    yield opened
    opened.close()


@pytest.fixture
def create_box(runtime: SandboxRuntime, tmp_path: Path) -> Iterator[Callable[[], tuple[Box, BoxSpec]]]:
    created: list[str] = []

    def create() -> tuple[Box, BoxSpec]:
        workspace = tmp_path / "workspace"
        workspace.mkdir(exist_ok=True)
        (workspace / "AGENTS.md").write_text("seeded by the test\n")
        spec = BoxSpec(
            image=IMAGE,
            name=f"csgclaw-it-{uuid.uuid4().hex[:10]}",
            cmd=BOX_COMMAND,
            env={"CSGCLAW_IT": "1"},
            mounts=[Mount(host_path=str(workspace), guest_path=WORKSPACE_GUEST_PATH)],
        )
        box = runtime.create(spec)
        created.append(spec.name)
        return box, spec

    yield create
    for name in created:
        with contextlib.suppress(BoxNotFound):
            runtime.remove(name, force=True)


def run(box: Box, argv: list[str]) -> tuple[int, str]:
    stdout, stderr = io.BytesIO(), io.BytesIO()
    exit_code = box.exec(argv, stdout=stdout, stderr=stderr, timeout=60)
    return exit_code, stdout.getvalue().decode() + stderr.getvalue().decode()


def wait_for_log(box: Box, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    logs = ""
    while time.monotonic() < deadline:
        try:
            logs = box.logs(20)
        except Exception as exc:  # the log file may not exist for the first moments
            logs = f"({exc})"
        if text in logs:
            return logs
        time.sleep(1)
    raise AssertionError(f"{text!r} not in the gateway log after {timeout} s: {logs!r}")


def test_a_box_runs_its_command_with_env_and_mount_and_is_found_by_name(runtime, create_box):
    box, spec = create_box()
    box.start()

    assert runtime.get(spec.name).info().state == "running"
    wait_for_log(box, READY_LINE)
    assert run(box, ["sh", "-c", "echo $CSGCLAW_IT"]) == (0, "1\n")
    assert run(box, ["cat", f"{WORKSPACE_GUEST_PATH}/AGENTS.md"]) == (0, "seeded by the test\n")
    exit_code, _ = run(box, ["sh", "-c", "exit 7"])
    assert exit_code == 7


def test_a_stopped_box_is_no_longer_running_and_starts_again(runtime, create_box):
    box, spec = create_box()
    box.start()
    wait_for_log(box, READY_LINE)

    box.stop(timeout=10)
    assert runtime.get(spec.name).info().state in ("stopped", "exited")

    box.start()
    assert runtime.get(spec.name).info().state == "running"


def test_a_removed_box_is_gone(runtime, create_box):
    box, spec = create_box()
    box.start()

    runtime.remove(spec.name, force=True)

    with pytest.raises(BoxNotFound):
        runtime.get(spec.name).info()
