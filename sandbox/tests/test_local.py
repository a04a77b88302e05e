"""Tests for sandbox/providers/local.py: real gateways run from a fake picoclaw, with or without bwrap."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.boxspec import runtime_home
from sandbox.providers import local
from sandbox.providers.base import BoxNotFound, SandboxError, SandboxUnavailable
from sandbox.providers.local import LocalBox, LocalProvider, LocalRuntime
from sandbox.providers.local_host import bwrap_arguments, group_alive
from sandbox.providers.local_runtime import RuntimeChoice, bwrap_gateway_command, host_gateway_command
from sandbox.tests.factories import agent_spec, sandbox_config

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(30)]

FAKE_PICOCLAW = """#!/bin/sh
echo "picoclaw $* home=$HOME bot=$PICOCLAW_CHANNELS_CSGCLAW_BOT_ID"
[ -n "$FAKE_PICOCLAW_IGNORE_TERM" ] && trap '' TERM
[ -n "$FAKE_PICOCLAW_EXIT_AT_ONCE" ] && exit 3
sleep "${FAKE_PICOCLAW_SECONDS:-30}"
"""


PICOCLAW_CHOICE = RuntimeChoice(runtime="picoclaw", executable="/usr/local/bin/picoclaw")


def bwrap_usable() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", "--ro-bind-try", "/bin", "/bin"]
    probe += ["--ro-bind-try", "/lib", "/lib", "--ro-bind-try", "/lib64", "/lib64", "/bin/true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_bwrap = pytest.mark.skipif(
    not bwrap_usable(), reason="bubblewrap (bwrap) is missing or cannot create namespaces"
)


@pytest.fixture
def picoclaw(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "picoclaw"
    script.parent.mkdir()
    script.write_text(FAKE_PICOCLAW)
    script.chmod(0o755)
    return script


@pytest.fixture
def open_runtime(picoclaw: Path, csgclaw_home: Path) -> Iterator[Callable[..., LocalRuntime]]:
    """Opens local runtimes and force-removes their boxes afterwards, so no gateway outlives a test."""
    opened: list[LocalRuntime] = []

    def open_one(
        slug: str = "alice", isolation: str = "none", picoclaw_path: str = "", runtime: str = "auto"
    ) -> LocalRuntime:
        config = sandbox_config(
            picoclaw_path=picoclaw_path or str(picoclaw), local_isolation=isolation, runtime=runtime
        )
        runtime = LocalProvider(config).open(runtime_home(csgclaw_home, slug, "boxlite"))
        opened.append(runtime)
        return runtime

    yield open_one
    for runtime in opened:
        if runtime.state_path.exists():
            runtime.remove(json.loads(runtime.state_path.read_text())["id"], force=True)


def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def log_has(box: LocalBox, text: str) -> Callable[[], bool]:
    return lambda: text in box.logs(50)


def pid_of(runtime: LocalRuntime) -> int:
    return json.loads(runtime.state_path.read_text())["pid"]


@pytest.mark.timeout(5)
def test_bwrap_arguments_match_the_documented_command_line() -> None:
    arguments = bwrap_arguments(
        bwrap="bwrap",
        box_home=Path("/h/agents/alice/boxlite/home"),
        workspace="/h/agents/alice/workspace",
        projects="/h/projects",
        binds=[("/usr/local/bin/picoclaw", "/opt/csgclaw/picoclaw")],
        setenv={},
    )

    assert arguments == [
        "bwrap", "--unshare-all", "--share-net",
        "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--ro-bind-try", "/bin", "/bin",
        "--ro-bind-try", "/lib", "/lib", "--ro-bind-try", "/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", "/h/agents/alice/boxlite/home", "/home/picoclaw",
        "--bind", "/h/agents/alice/workspace", "/home/picoclaw/.picoclaw/workspace",
        "--bind", "/h/projects", "/home/picoclaw/.picoclaw/workspace/projects",
        "--ro-bind", "/usr/local/bin/picoclaw", "/opt/csgclaw/picoclaw",
        "--chdir", "/home/picoclaw",
    ]  # fmt: skip
    assert bwrap_gateway_command(PICOCLAW_CHOICE, {}) == [
        "/bin/sh",
        "-c",
        "/opt/csgclaw/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null",
    ]


@pytest.mark.timeout(5)
def test_host_gateway_command_quotes_the_executable() -> None:
    assert host_gateway_command(RuntimeChoice(runtime="picoclaw", executable='/opt/my "pico"/$bin'), {}) == [
        "/bin/sh",
        "-c",
        '"/opt/my \\"pico\\"/\\$bin" gateway -d 1>"$HOME/.picoclaw/gateway.log" 2>/dev/null',
    ]


def test_lifecycle_without_isolation(open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path) -> None:
    runtime = open_runtime()

    box = runtime.create(agent_spec(csgclaw_home))

    info = box.info()
    assert (info.id, info.name, info.state, info.detail) == ("local-alice", "alice", "running", "")
    wait_for(log_has(box, "picoclaw gateway -d home="))
    assert f"home={runtime.box_home} bot=u-alice" in box.logs(1)
    record = json.loads(runtime.state_path.read_text())
    assert record["isolation"] == "none"
    assert stat.S_IMODE(runtime.state_path.stat().st_mode) == 0o600
    first_pid = pid_of(runtime)

    box.stop()

    assert box.info().state == "stopped"
    assert not group_alive(first_pid)

    runtime.get("alice").start()

    assert runtime.get("local-alice").info().state == "running"
    assert pid_of(runtime) != first_pid
    second_pid = pid_of(runtime)
    runtime.remove("alice")
    assert not group_alive(second_pid)
    with pytest.raises(BoxNotFound, match=r'^local: box "alice" not found$'):
        runtime.get("alice")


def test_host_layout_rendered_files_and_symlinks(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()
    runtime.create(agent_spec(csgclaw_home))

    picoclaw_home = runtime.box_home / ".picoclaw"
    config = json.loads((picoclaw_home / "config.json").read_text())
    assert config["channels"]["csgclaw"]["bot_id"] == "u-alice"
    assert config["model_list"][0]["api_base"] == "http://10.0.0.8:18080/api/v1/agents/u-alice/llm"
    assert stat.S_IMODE((picoclaw_home / ".security.yml").stat().st_mode) == 0o600
    workspace = csgclaw_home / "agents" / "alice" / "workspace"
    assert (picoclaw_home / "workspace").resolve() == workspace.resolve()
    assert (workspace / "projects").resolve() == (csgclaw_home / "projects").resolve()


def test_a_gateway_that_exits_on_its_own_is_exited(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    box = open_runtime().create(agent_spec(csgclaw_home, FAKE_PICOCLAW_SECONDS="0.5"))

    assert box.info().state == "running"
    wait_for(lambda: box.info().state == "exited")


def test_stop_escalates_to_sigkill(open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home, FAKE_PICOCLAW_IGNORE_TERM="1"))
    wait_for(log_has(box, "picoclaw gateway"))
    pid = pid_of(runtime)

    started = time.monotonic()
    box.stop(timeout=0.3)

    assert time.monotonic() - started < 5
    assert not group_alive(pid)
    assert box.info().state == "stopped"


def test_force_stop_kills_at_once(open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home, FAKE_PICOCLAW_IGNORE_TERM="1"))
    pid = pid_of(runtime)

    box.stop(force=True)

    assert not group_alive(pid)


def test_a_gateway_that_dies_at_once_is_an_error(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()

    with pytest.raises(SandboxError, match=r"^start local box: the gateway exited at once with code 3: "):
        runtime.create(agent_spec(csgclaw_home, FAKE_PICOCLAW_EXIT_AT_ONCE="1"))

    assert not runtime.state_path.exists()


def test_missing_picoclaw(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere" / "picoclaw")
    runtime = open_runtime(picoclaw_path=missing, runtime="picoclaw")

    with pytest.raises(SandboxUnavailable) as raised:
        runtime.create(agent_spec(csgclaw_home))

    assert str(raised.value) == (
        f'local: executable "{missing}" not found; install picoclaw or set [sandbox].picoclaw_path'
    )


def without_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(local.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))


def test_bwrap_required_but_missing(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_bwrap(monkeypatch)
    runtime = open_runtime(isolation="bwrap")

    with pytest.raises(SandboxUnavailable) as raised:
        runtime.create(agent_spec(csgclaw_home))

    assert str(raised.value) == (
        'local: bubblewrap (bwrap) is required by [sandbox].local_isolation = "bwrap" but was not found'
    )


def test_auto_without_bwrap_runs_unisolated_and_says_so(
    open_runtime: Callable[..., LocalRuntime],
    csgclaw_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    without_bwrap(monkeypatch)
    box = open_runtime(isolation="auto").create(agent_spec(csgclaw_home))

    assert box.info().detail == "running without isolation (bubblewrap not found)"
    assert "without isolation" in caplog.text
    box.stop()
    assert box.info().detail == ""


def test_unknown_isolation_value(open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path) -> None:
    with pytest.raises(SandboxError, match=r'^local: unsupported \[sandbox\].local_isolation "jail"'):
        open_runtime(isolation="jail").create(agent_spec(csgclaw_home))


def test_exec_rewrites_guest_paths_and_passes_exit_codes(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    box = open_runtime().create(agent_spec(csgclaw_home))
    stdout, stderr = io.BytesIO(), io.BytesIO()

    assert box.exec(["cat", "/home/picoclaw/.picoclaw/config.json"], stdout=stdout, stderr=stderr) == 0
    assert json.loads(stdout.getvalue())["channels"]["csgclaw"]["bot_id"] == "u-alice"
    assert box.exec(["sh", "-c", 'test "$HOME" = "$PWD" && exit 4'], stdout=stdout, stderr=stderr) == 4
    assert box.exec(["no-such-tool-xyz"], stdout=stdout, stderr=stderr) == 127
    assert b"no-such-tool-xyz: command not found" in stderr.getvalue()


def test_create_refuses_an_existing_box_and_incomplete_specs(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()
    runtime.create(agent_spec(csgclaw_home))

    with pytest.raises(SandboxError, match=r'^create local box: box "alice" already exists$'):
        runtime.create(agent_spec(csgclaw_home))
    other = open_runtime(slug="bob")
    spec = agent_spec(csgclaw_home, slug="bob", agent_id="u-bob")
    spec.mounts = spec.mounts[:1]
    with pytest.raises(SandboxError, match=r"^create local box: the box spec has no mount for "):
        other.create(spec)


def test_logs_of_a_box_that_never_wrote(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    (runtime.box_home / ".picoclaw" / "gateway.log").unlink()

    assert box.logs(10) == ""


@needs_bwrap
def test_lifecycle_inside_bubblewrap(open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path) -> None:
    runtime = open_runtime(isolation="bwrap")

    box = runtime.create(agent_spec(csgclaw_home))

    assert box.info().state == "running"
    wait_for(log_has(box, "home=/home/picoclaw bot=u-alice"))
    stdout = io.BytesIO()
    assert box.exec(["cat", "/home/picoclaw/.picoclaw/config.json"], stdout=stdout, stderr=io.BytesIO()) == 0
    assert json.loads(stdout.getvalue())["channels"]["csgclaw"]["bot_id"] == "u-alice"
    projects_file = csgclaw_home / "projects" / "shared.txt"
    projects_file.write_text("from the host")
    stdout = io.BytesIO()
    assert (
        box.exec(
            ["cat", "/home/picoclaw/.picoclaw/workspace/projects/shared.txt"], stdout=stdout, stderr=stdout
        )
        == 0
    )
    assert stdout.getvalue() == b"from the host"
    assert box.exec(["ls", str(csgclaw_home)], stdout=io.BytesIO(), stderr=io.BytesIO()) != 0
    pid = pid_of(runtime)

    box.stop(timeout=5)

    assert box.info().state == "stopped"
    assert not group_alive(pid)


@needs_bwrap
def test_bwrap_after_an_unisolated_run_replaces_the_symlinks(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    open_runtime(isolation="none").create(agent_spec(csgclaw_home)).stop()
    isolated = open_runtime(isolation="bwrap")

    isolated.get("alice").start()

    assert isolated.get("alice").info().state == "running"
    assert not (csgclaw_home / "agents" / "alice" / "workspace" / "projects").is_symlink()


def drop_from_state_file(runtime: LocalRuntime, key: str) -> None:
    record = json.loads(runtime.state_path.read_text())
    del record[key]
    runtime.state_path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("key", "operation", "problem"),
    [
        ("name", lambda box: box.info(), '"name" is missing or not a string'),
        ("spec", lambda box: box.start(), '"spec" is missing or not an object'),
        (
            "spec",
            lambda box: box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO()),
            '"spec" is missing or not an object',
        ),
    ],
)
def test_an_incomplete_state_file_is_a_sandbox_error(
    key: str,
    operation: Callable[[LocalBox], object],
    problem: str,
    open_runtime: Callable[..., LocalRuntime],
    csgclaw_home: Path,
) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    box.stop(force=True)
    drop_from_state_file(runtime, key)

    with pytest.raises(SandboxError) as raised:
        operation(box)

    assert str(raised.value) == f"local: read {runtime.state_path}: {problem}"


def test_a_box_with_an_incomplete_state_file_can_still_be_stopped_and_removed(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    pid = pid_of(runtime)
    drop_from_state_file(runtime, "spec")

    box.stop(force=True)
    runtime.remove("alice", force=True)

    assert not group_alive(pid)
    assert not runtime.state_path.exists()


def test_a_directory_in_place_of_the_gateway_log_has_no_logs(
    open_runtime: Callable[..., LocalRuntime], csgclaw_home: Path
) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    gateway_log = runtime.box_home / ".picoclaw" / "gateway.log"
    gateway_log.unlink()
    gateway_log.mkdir()

    assert box.logs(5) == ""


def test_a_runtime_home_that_is_a_file_is_a_sandbox_error(tmp_path: Path, csgclaw_home: Path) -> None:
    home = tmp_path / "not-a-directory"
    home.write_text("")
    runtime = LocalProvider(sandbox_config(picoclaw_path="picoclaw", local_isolation="none")).open(home)

    with pytest.raises(SandboxError, match=r"^create local box: \[Errno 20\] Not a directory: "):
        runtime.create(agent_spec(csgclaw_home))


@pytest.mark.parametrize("isolation", ["none", pytest.param("bwrap", marks=needs_bwrap)])
def test_a_relative_picoclaw_path_is_resolved_against_the_server_directory(
    isolation: str,
    open_runtime: Callable[..., LocalRuntime],
    picoclaw: Path,
    csgclaw_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(picoclaw.parent)
    runtime = open_runtime(isolation=isolation, picoclaw_path="./picoclaw")

    box = runtime.create(agent_spec(csgclaw_home))

    assert box.info().state == "running"
    assert json.loads(runtime.state_path.read_text())["executable"] == str(picoclaw)
    wait_for(log_has(box, "picoclaw gateway -d home="))
