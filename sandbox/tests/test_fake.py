"""Tests for sandbox/providers/fake.py: shared JSON state, the operation log, failure injection and delay."""

from __future__ import annotations

import io
import json
import stat
import time
from pathlib import Path

import pytest

from sandbox.boxspec import runtime_home
from sandbox.providers.base import BoxNotFound, SandboxError
from sandbox.providers.fake import FakeProvider, FakeRuntime
from sandbox.tests.factories import (
    agent_spec,
    example_environment_mismatches,
    example_spec,
    provider_secrets_in,
    sandbox_config,
)

pytestmark = pytest.mark.timeout(10)


@pytest.fixture(autouse=True)
def no_injection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSGCLAW_FAKE_SANDBOX_FAIL", raising=False)
    monkeypatch.delenv("CSGCLAW_FAKE_SANDBOX_DELAY", raising=False)


def open_runtime(home: Path, slug: str = "alice") -> FakeRuntime:
    return FakeProvider(sandbox_config()).open(runtime_home(home, slug, "boxlite"))


def test_create_records_the_spec_and_runs(csgclaw_home: Path) -> None:
    spec = agent_spec(csgclaw_home)

    box = open_runtime(csgclaw_home).create(spec)

    info = box.info()
    assert (info.id, info.name, info.state) == ("fake-alice", "alice", "running")
    assert info.created_at is not None
    state_path = runtime_home(csgclaw_home, "alice", "boxlite") / "fake-box.json"
    record = json.loads(state_path.read_text())
    assert record["spec"] == {
        "image": spec.image,
        "cmd": spec.cmd,
        "env": spec.env,
        "mounts": [
            {"host_path": m.host_path, "guest_path": m.guest_path, "read_only": False} for m in spec.mounts
        ],
        "labels": spec.labels,
    }
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600


@pytest.mark.usefixtures("provider_in_server_env")
def test_the_recorded_box_has_every_section_6_2_variable_and_no_provider_key(csgclaw_home: Path) -> None:
    open_runtime(csgclaw_home, "worker-1").create(example_spec(csgclaw_home))

    state_path = runtime_home(csgclaw_home, "worker-1", "boxlite") / "fake-box.json"
    recorded = json.loads(state_path.read_text())["spec"]["env"]
    assert example_environment_mismatches(recorded) == {}
    assert provider_secrets_in(recorded) == []


def test_state_is_shared_between_provider_instances(csgclaw_home: Path) -> None:
    open_runtime(csgclaw_home).create(agent_spec(csgclaw_home))

    other = open_runtime(csgclaw_home)

    assert other.get("alice").info().state == "running"
    assert other.get("fake-alice").info().name == "alice"
    with pytest.raises(BoxNotFound):
        other.get("bob")


def test_lifecycle_and_operation_log(csgclaw_home: Path) -> None:
    runtime = open_runtime(csgclaw_home)
    box = runtime.create(agent_spec(csgclaw_home))

    box.stop()
    assert open_runtime(csgclaw_home).get("alice").info().state == "stopped"
    box.start()
    assert box.info().state == "running"
    runtime.remove("alice", force=True)

    with pytest.raises(BoxNotFound):
        runtime.get("alice")
    with pytest.raises(BoxNotFound):
        runtime.remove("alice")
    log = (runtime_home(csgclaw_home, "alice", "boxlite") / "fake-gateway.log").read_text().splitlines()
    assert log == [
        "fake box alice create",
        "fake box alice stop",
        "fake box alice info",
        "fake box alice start",
        "fake box alice info",
        "fake box alice remove",
    ]


def test_logs_tail_the_operation_log(csgclaw_home: Path) -> None:
    box = open_runtime(csgclaw_home).create(agent_spec(csgclaw_home))
    box.stop()
    box.start()

    assert box.logs(2) == "fake box alice stop\nfake box alice start\n"


def test_other_commands_exit_zero_silently(csgclaw_home: Path) -> None:
    box = open_runtime(csgclaw_home).create(agent_spec(csgclaw_home))
    stdout, stderr = io.BytesIO(), io.BytesIO()

    assert box.exec(["ls", "/"], stdout=stdout, stderr=stderr) == 0
    assert stdout.getvalue() == stderr.getvalue() == b""


@pytest.mark.parametrize("operation", ["open", "create", "start", "stop", "remove", "exec", "info"])
def test_failure_injection(operation: str, csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = open_runtime(csgclaw_home)
    box = runtime.create(agent_spec(csgclaw_home))
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_FAIL", f"nothing, {operation}")
    calls = {
        "open": lambda: open_runtime(csgclaw_home),
        "create": lambda: runtime.create(agent_spec(csgclaw_home)),
        "start": box.start,
        "stop": box.stop,
        "remove": lambda: runtime.remove("alice"),
        "exec": lambda: box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO()),
        "info": box.info,
    }

    with pytest.raises(SandboxError) as raised:
        calls[operation]()

    assert str(raised.value) == f"fake sandbox: {operation} failed"


def test_failure_injection_leaves_other_operations_alone(
    csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_FAIL", "start")

    box = open_runtime(csgclaw_home).create(agent_spec(csgclaw_home))

    assert box.info().state == "running"


def test_delay_slows_create(csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "0.3")
    runtime = open_runtime(csgclaw_home)

    started = time.monotonic()
    runtime.create(agent_spec(csgclaw_home))

    assert time.monotonic() - started >= 0.3


def test_bad_delay_is_a_readable_error(csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "soon")

    with pytest.raises(SandboxError, match="CSGCLAW_FAKE_SANDBOX_DELAY must be a number of seconds"):
        open_runtime(csgclaw_home).create(agent_spec(csgclaw_home))
