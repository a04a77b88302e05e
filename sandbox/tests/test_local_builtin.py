"""Tests for the local provider's built-in runtime (builtin-runtime.md §2.2–§2.4): choice, launch, status."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox import runtimes
from sandbox.boxspec import runtime_home
from sandbox.providers import local_runtime
from sandbox.providers.base import SandboxError, SandboxUnavailable
from sandbox.providers.local import LocalProvider, LocalRuntime
from sandbox.providers.local_host import process_alive
from sandbox.providers.local_runtime import RuntimeChoice, choose_runtime, interpreter_roots
from sandbox.tests.factories import (
    agent_spec,
    example_environment_mismatches,
    example_spec,
    provider_secrets_in,
    sandbox_config,
)

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(30)]

TOKEN = "shared-token"
FAKE_PICOCLAW = '#!/bin/sh\necho "picoclaw $*"\nsleep 30\n'
# Stands in for agent_runtime while a test is about the launch, not the runtime (written by others).
FAKE_RUNTIME_MAIN = """\
import json, os, sys, time
home = os.environ["HOME"]
keep = ("HOME", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "CSGCLAW_RUNTIME_BACKOFF_SCALE")
keep += ("CSGCLAW_ACCESS_TOKEN",)
with open(os.path.join(home, ".picoclaw", "fake-runtime-env.json"), "w") as out:
    json.dump({key: os.environ.get(key) for key in keep}, out)
print("fake runtime", *sys.argv[1:], flush=True)
time.sleep(float(os.environ.get("FAKE_RUNTIME_SECONDS", "30")))
"""
# A bwrap that records how it was called and, for a gateway, stays up like one.
FAKE_BWRAP = """#!{python}
import json, os, sys, time
with open({log!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
if "gateway" in sys.argv[-1]:
    time.sleep(30)
"""


def bwrap_usable() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    return (
        subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], capture_output=True, check=False).returncode
        == 0
    )


needs_bwrap = pytest.mark.skipif(
    not bwrap_usable(), reason="bubblewrap (bwrap) is missing or `bwrap --ro-bind / / true` fails here"
)


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "python" / "agent_runtime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_RUNTIME_MAIN)
    monkeypatch.setattr(local_runtime, "package_dir", lambda: package)
    return package


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH, for fake `picoclaw` and `bwrap` executables."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every process the provider starts: argv and environment, then started for real."""
    recorded: list[dict] = []
    real_popen = subprocess.Popen

    def recording_popen(argv, **kwargs):
        recorded.append({"argv": list(argv), "env": dict(kwargs.get("env") or {})})
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return recorded


@pytest.fixture
def open_runtime(csgclaw_home: Path) -> Iterator[Callable[..., LocalRuntime]]:
    """Opens local runtimes and force-removes their boxes afterwards, so no process outlives a test."""
    opened: list[LocalRuntime] = []

    def open_one(
        *, runtime: str = "auto", isolation: str = "none", picoclaw_path: str = "picoclaw"
    ) -> LocalRuntime:
        config = sandbox_config(picoclaw_path=picoclaw_path, local_isolation=isolation, runtime=runtime)
        opened.append(LocalProvider(config).open(runtime_home(csgclaw_home, "alice", "boxlite")))
        return opened[-1]

    yield open_one
    for runtime in opened:
        if runtime.state_path.exists():
            runtime.remove(json.loads(runtime.state_path.read_text())["id"], force=True)


def builtin_spec(home: Path, runtime: str = "", **environment: str):
    spec = agent_spec(home, **environment)
    if runtime:
        spec.labels["csgclaw.runtime"] = runtime
    return spec


def record_of(runtime: LocalRuntime) -> dict:
    return json.loads(runtime.state_path.read_text())


def wait_for(predicate: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def builtin_script(python: str, home: str, delays: str = "1 2 4 8 16 30") -> str:
    """The launcher of §2.3 around a restart loop: `python` and `home` as the shell must see them."""
    log = f"{home}/.picoclaw/gateway.log"
    return (
        f"mv -f {log} {log}.1 2>/dev/null; "
        "{ n=0; while :; do started=$(date +%s); "
        f"{python} -m agent_runtime gateway -d; code=$?; "
        "case $code in 0|2) exit $code;; esac; "
        f"rm -f {home}/.picoclaw/runtime-status.json; "
        "[ $(($(date +%s) - started)) -ge 60 ] && n=0; "
        f"set -- {delays}; shift $((n < $# - 1 ? n : $# - 1)); n=$((n + 1)); "
        'echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) WARN  [supervisor] runtime exited with code $code; '
        'restarting in $1 s"; sleep $1; '
        f"done; }} 1>{log} 2>&1"
    )


def builtin_host_command(python: str, delays: str = "1 2 4 8 16 30") -> list[str]:
    return ["/bin/sh", "-c", builtin_script(f'"{python}"', '"$HOME"', delays)]


# A stand-in interpreter for the supervisor: each run logs a line, then exits with the next listed code.
FAKE_CRASHING_PYTHON = """#!/bin/sh
runs=$(cat "$HOME/runs" 2>/dev/null || echo 0); runs=$((runs + 1)); echo $runs > "$HOME/runs"
echo '{"connected": true}' > "$HOME/.picoclaw/runtime-status.json"
echo "run $runs: $*"
set -- $EXIT_CODES; shift $((runs - 1)); exit ${1:-0}
"""


@pytest.mark.parametrize(
    ("exit_codes", "runs", "final_code"),
    [("137 1 0", 3, 0), ("2", 1, 2), ("137 2", 2, 2)],
    ids=["restarts-until-a-clean-stop", "config-error-is-final", "config-error-after-a-crash"],
)
def test_the_launcher_restarts_a_crashed_runtime_with_backoff(tmp_path, exit_codes, runs, final_code):
    home = tmp_path / "home"
    (home / ".picoclaw").mkdir(parents=True)
    python = executable(tmp_path / "bin" / "python", FAKE_CRASHING_PYTHON)
    choice = RuntimeChoice(runtime="builtin", python=str(python), package=str(tmp_path))
    argv = local_runtime.host_gateway_command(choice, {"CSGCLAW_RUNTIME_BACKOFF_SCALE": "0.01"})

    done = subprocess.run(
        argv, env={"HOME": str(home), "PATH": os.environ["PATH"], "EXIT_CODES": exit_codes}, timeout=10
    )

    assert done.returncode == final_code
    assert int((home / "runs").read_text()) == runs
    log = (home / ".picoclaw" / "gateway.log").read_text()
    assert log.count("-m agent_runtime gateway -d") == runs
    restarts = [line for line in log.splitlines() if "[supervisor]" in line]
    assert [line.split(" WARN  ", 1)[1] for line in restarts] == [
        f"[supervisor] runtime exited with code {code}; restarting in {delay:g} s"
        for code, delay in zip(exit_codes.split()[: runs - 1], (0.01, 0.02), strict=False)
    ]
    # Removed after each crash, so a runtime down between runs never looks connected.
    crashed_last = final_code != 0 and runs > 1
    assert (home / ".picoclaw" / "runtime-status.json").exists() != crashed_last or final_code == 2


# --- selection (§2.2) -------------------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("label", "setting", "expected"),
    [
        ("builtin", "picoclaw", "builtin"),
        ("picoclaw", "builtin", "picoclaw"),
        ("", "builtin", "builtin"),
        ("", "picoclaw", "picoclaw"),
        ("", "auto", "picoclaw"),
        ("", "", "picoclaw"),
        ("", " BuiltIn ", "builtin"),
    ],
)
def test_label_wins_over_the_setting(bin_dir, fake_package, label, setting, expected) -> None:
    executable(bin_dir / "picoclaw", FAKE_PICOCLAW)

    choice = choose_runtime(label=label, setting=setting, picoclaw_path="picoclaw")

    assert choice.runtime == expected
    assert choice.fallback is False


@pytest.mark.timeout(5)
def test_only_a_missing_picoclaw_falls_back(tmp_path: Path, fake_package: Path) -> None:
    missing = str(tmp_path / "nowhere" / "picoclaw")

    auto = choose_runtime(label="", setting="auto", picoclaw_path=missing)

    assert auto == RuntimeChoice(
        runtime="builtin", fallback=True, python=sys.executable, package=str(fake_package)
    )
    with pytest.raises(SandboxUnavailable) as raised:
        choose_runtime(label="", setting="picoclaw", picoclaw_path=missing)
    assert str(raised.value) == (
        f'local: executable "{missing}" not found; install picoclaw or set [sandbox].picoclaw_path'
    )
    with pytest.raises(SandboxUnavailable):
        choose_runtime(label="picoclaw", setting="builtin", picoclaw_path=missing)


@pytest.mark.timeout(5)
def test_the_real_package_is_found_without_importing_it() -> None:
    imported = "agent_runtime" in sys.modules
    package = local_runtime.package_dir()

    assert (package / "__main__.py").is_file()
    assert package == Path(os.path.realpath(Path(__file__).resolve().parents[2] / "agent_runtime"))
    assert ("agent_runtime" in sys.modules) is imported


def test_auto_with_picoclaw_on_path_runs_picoclaw(
    open_runtime, csgclaw_home: Path, bin_dir: Path, fake_package: Path, launches: list[dict]
) -> None:
    picoclaw = executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    runtime = open_runtime()

    box = runtime.create(agent_spec(csgclaw_home))

    assert launches[-1]["argv"] == [
        "/bin/sh",
        "-c",
        f'"{picoclaw}" gateway -d 1>"$HOME/.picoclaw/gateway.log" 2>/dev/null',
    ]
    record = record_of(runtime)
    assert (record["runtime"], record["fallback"], record["executable"]) == ("picoclaw", False, str(picoclaw))
    assert box.info().detail == ""


def test_auto_without_picoclaw_falls_back_to_the_builtin_runtime(
    open_runtime,
    csgclaw_home: Path,
    fake_package: Path,
    launches: list[dict],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "nowhere" / "picoclaw")
    runtime = open_runtime(picoclaw_path=missing)

    with caplog.at_level(logging.INFO, logger="sandbox.providers.local"):
        box = runtime.create(agent_spec(csgclaw_home))

    assert launches[-1]["argv"] == builtin_host_command(sys.executable)
    record = record_of(runtime)
    assert {key: record[key] for key in ("runtime", "fallback", "python", "package")} == {
        "runtime": "builtin",
        "fallback": True,
        "python": sys.executable,
        "package": str(fake_package),
    }
    assert [(r.levelname, r.name, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "sandbox.providers.local",
            f'local: picoclaw executable "{missing}" not found; '
            "starting the built-in runtime for agent alice",
        )
    ]
    assert box.info().detail == "built-in runtime (picoclaw not found)"
    wait_for(lambda: "fake runtime gateway -d" in box.logs(5))


def test_a_builtin_label_logs_info_and_runs_it_with_picoclaw_on_path(
    open_runtime,
    csgclaw_home: Path,
    bin_dir: Path,
    fake_package: Path,
    launches: list[dict],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    monkeypatch.setenv("CSGCLAW_RUNTIME_BACKOFF_SCALE", "0.01")
    runtime = open_runtime(runtime="picoclaw")

    with caplog.at_level(logging.INFO, logger="sandbox.providers.local"):
        box = runtime.create(builtin_spec(csgclaw_home, runtime="builtin"))

    assert caplog.messages == ["local: starting the built-in runtime for agent alice"]
    launch = launches[-1]
    assert launch["argv"] == builtin_host_command(sys.executable, delays="0.01 0.02 0.04 0.08 0.16 0.3")
    assert launch["env"]["PYTHONPATH"] == str(fake_package.parent)
    assert launch["env"]["PYTHONDONTWRITEBYTECODE"] == "1"
    assert launch["env"]["CSGCLAW_RUNTIME_BACKOFF_SCALE"] == "0.01"
    assert launch["env"]["HOME"] == str(runtime.box_home)
    assert box.info().detail == "built-in runtime"
    env_file = runtime.box_home / ".picoclaw" / "fake-runtime-env.json"
    wait_for(env_file.exists)
    wait_for(lambda: "fake runtime gateway -d" in box.logs(5))
    assert process_alive(record_of(runtime)["pid"])


def test_a_picoclaw_label_overrides_a_builtin_setting(
    open_runtime, csgclaw_home: Path, bin_dir: Path, fake_package: Path, launches: list[dict]
) -> None:
    picoclaw = executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    runtime = open_runtime(runtime="builtin")

    runtime.create(builtin_spec(csgclaw_home, runtime="picoclaw"))

    assert launches[-1]["argv"][2].startswith(f'"{picoclaw}" gateway -d')


def test_the_choice_is_made_again_at_every_start(
    open_runtime, csgclaw_home: Path, bin_dir: Path, fake_package: Path, launches: list[dict]
) -> None:
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    assert record_of(runtime)["runtime"] == "builtin"
    box.stop(force=True)
    picoclaw = executable(bin_dir / "picoclaw", FAKE_PICOCLAW)

    box.start()

    record = record_of(runtime)
    assert (record["runtime"], record["fallback"], record["executable"]) == ("picoclaw", False, str(picoclaw))
    assert launches[-1]["argv"][2].startswith(f'"{picoclaw}"')


@pytest.mark.parametrize("label", ["", "builtin"])
def test_an_unknown_runtime_setting_fails_the_start(open_runtime, csgclaw_home: Path, label: str) -> None:
    runtime = open_runtime(runtime="jvm")

    with pytest.raises(SandboxError) as raised:
        runtime.create(builtin_spec(csgclaw_home, runtime=label))

    assert str(raised.value) == (
        'local: unsupported [sandbox].runtime "jvm"; supported values are "auto", "picoclaw" or "builtin"'
    )
    assert not runtime.state_path.exists()


@pytest.mark.timeout(5)
def test_image_providers_refuse_the_builtin_runtime() -> None:
    with pytest.raises(SandboxError) as raised:
        runtimes.require_runtime_supported(provider="docker", label="", setting="builtin")
    assert str(raised.value) == 'builtin runtime requires [sandbox].provider = "local"'
    runtimes.require_runtime_supported(provider="docker", label="picoclaw", setting="builtin")
    runtimes.require_runtime_supported(provider="local", label="builtin", setting="auto")
    # Under docker the setting is not the local provider's business, so only "builtin" is refused.
    runtimes.require_runtime_supported(provider="docker", label="", setting="jvm")


# --- launch (§2.3) ----------------------------------------------------------------------------------------


@pytest.mark.timeout(5)
def test_interpreter_roots_skip_system_dirs_and_nested_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv, base = tmp_path / "venv", tmp_path / "pythons" / "3.11"
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "exec_prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", str(base))
    monkeypatch.setattr(sys, "base_exec_prefix", "/usr")

    assert interpreter_roots(str(venv / "bin" / "python")) == [str(venv), str(base)]
    assert interpreter_roots(str(base / "bin" / "python3")) == [str(venv), str(base)]
    assert interpreter_roots("/opt/other/bin/python") == [str(venv), str(base), "/opt/other/bin"]


def test_fake_bwrap_records_the_builtin_binds_and_no_secret_on_the_command_line(
    open_runtime,
    csgclaw_home: Path,
    bin_dir: Path,
    fake_package: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "bwrap.jsonl"
    executable(bin_dir / "bwrap", FAKE_BWRAP.format(python=sys.executable, log=str(log)))
    monkeypatch.setenv("CSGCLAW_RUNTIME_STREAM", "bot")
    runtime = open_runtime(runtime="builtin", isolation="bwrap")

    box = runtime.create(agent_spec(csgclaw_home))
    assert box.exec([sys.executable, "-c", "pass"], stdout=io.BytesIO(), stderr=io.BytesIO()) == 0

    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2)
    gateway, command = (json.loads(line) for line in log.read_text().splitlines())
    workspace = csgclaw_home / "agents" / "alice" / "workspace"
    program = [
        *(arg for root in interpreter_roots(sys.executable) for arg in ("--ro-bind", root, root)),
        *("--ro-bind", str(fake_package), "/opt/csgclaw/python/agent_runtime"),
    ]
    expected_prefix = [
        "--unshare-all", "--share-net",
        "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--ro-bind-try", "/bin", "/bin",
        "--ro-bind-try", "/lib", "/lib", "--ro-bind-try", "/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", str(runtime.box_home), "/home/picoclaw",
        "--bind", str(workspace), "/home/picoclaw/.picoclaw/workspace",
        "--bind", str(csgclaw_home / "projects"), "/home/picoclaw/.picoclaw/workspace/projects",
        *program,
        "--chdir", "/home/picoclaw",
        "--setenv", "PYTHONPATH", "/opt/csgclaw/python",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--setenv", "PYTHONNOUSERSITE", "1",
        "--setenv", "CSGCLAW_RUNTIME_STREAM", "bot",
    ]  # fmt: skip
    assert gateway["argv"] == [
        *expected_prefix,
        "/bin/sh",
        "-c",
        builtin_script(sys.executable, "~"),
    ]
    # Box.exec runs inside the gateway's binds.
    assert command["argv"] == [*expected_prefix, sys.executable, "-c", "pass"]
    for call in (gateway, command):
        assert "--clearenv" not in call["argv"]
        assert not [arg for arg in call["argv"] if TOKEN in arg]
        assert call["env"]["CSGCLAW_ACCESS_TOKEN"] == TOKEN
        assert call["env"]["HOME"] == "/home/picoclaw"
        assert call["env"]["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert "CSGCLAW_RUNTIME_STREAM" not in gateway["env"]
    assert process_alive(record_of(runtime)["pid"])


def test_a_picoclaw_box_keeps_the_token_off_its_command_line(
    open_runtime, csgclaw_home: Path, bin_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bwrap.jsonl"
    picoclaw = executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    executable(bin_dir / "bwrap", FAKE_BWRAP.format(python=sys.executable, log=str(log)))
    runtime = open_runtime(runtime="picoclaw", isolation="bwrap")

    runtime.create(agent_spec(csgclaw_home))

    wait_for(log.exists)
    call = json.loads(log.read_text().splitlines()[0])
    assert call["argv"][-8:] == [
        *("--ro-bind", str(picoclaw), "/opt/csgclaw/picoclaw", "--chdir", "/home/picoclaw"),
        "/bin/sh",
        "-c",
        "/opt/csgclaw/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null",
    ]
    assert not [arg for arg in call["argv"] if TOKEN in arg or arg in ("--setenv", "--clearenv")]
    assert call["env"]["OPENAI_API_KEY"] == TOKEN


def environment_inside_bwrap(call: dict) -> dict[str, str]:
    """What a box started through the fake bwrap sees: bwrap's own environment, then its `--setenv` pairs."""
    argv = call["argv"]
    setenv = {argv[i + 1]: argv[i + 2] for i, argument in enumerate(argv) if argument == "--setenv"}
    return {**call["env"], **setenv}


@pytest.mark.usefixtures("provider_in_server_env")
@pytest.mark.parametrize("runtime_name", ["builtin", "picoclaw"])
def test_a_bwrap_box_sees_every_section_6_2_variable_and_no_provider_key(
    open_runtime, csgclaw_home: Path, bin_dir: Path, fake_package: Path, tmp_path: Path, runtime_name: str
) -> None:
    log = tmp_path / "bwrap.jsonl"
    executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    executable(bin_dir / "bwrap", FAKE_BWRAP.format(python=sys.executable, log=str(log)))
    runtime = open_runtime(runtime=runtime_name, isolation="bwrap")

    runtime.create(example_spec(csgclaw_home))

    wait_for(log.exists)
    inside = environment_inside_bwrap(json.loads(log.read_text().splitlines()[0]))
    assert example_environment_mismatches(inside) == {}
    assert provider_secrets_in(inside) == []


@pytest.mark.usefixtures("provider_in_server_env")
@pytest.mark.parametrize("runtime_name", ["builtin", "picoclaw"])
def test_an_unisolated_box_sees_every_section_6_2_variable_in_its_host_home(
    open_runtime,
    csgclaw_home: Path,
    bin_dir: Path,
    fake_package: Path,
    launches: list[dict],
    runtime_name: str,
) -> None:
    executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    runtime = open_runtime(runtime=runtime_name)

    runtime.create(example_spec(csgclaw_home))

    # sandbox.md §9: without isolation the box runs in its host directory, so HOME is that directory.
    handed = launches[-1]["env"]
    assert example_environment_mismatches(handed, home=str(runtime.box_home)) == {}
    assert provider_secrets_in(handed) == []


@pytest.mark.parametrize("isolation", ["none", "bwrap"])
def test_runtime_knobs_join_the_box_but_never_replace_a_reserved_variable_it_has(
    open_runtime,
    csgclaw_home: Path,
    bin_dir: Path,
    fake_package: Path,
    launches: list[dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolation: str,
) -> None:
    log = tmp_path / "bwrap.jsonl"
    executable(bin_dir / "bwrap", FAKE_BWRAP.format(python=sys.executable, log=str(log)))
    monkeypatch.setenv("CSGCLAW_RUNTIME_STREAM", "server-choice")
    monkeypatch.setenv("CSGCLAW_RUNTIME_BACKOFF_SCALE", "0.5")
    runtime = open_runtime(runtime="builtin", isolation=isolation)

    runtime.create(builtin_spec(csgclaw_home, CSGCLAW_RUNTIME_STREAM="box-choice"))

    if isolation == "bwrap":
        wait_for(log.exists)
        inside = environment_inside_bwrap(json.loads(log.read_text().splitlines()[0]))
    else:
        inside = launches[-1]["env"]
    assert (inside["CSGCLAW_RUNTIME_STREAM"], inside["CSGCLAW_RUNTIME_BACKOFF_SCALE"]) == (
        "box-choice",
        "0.5",
    )


def test_without_isolation_the_command_line_of_the_runtime_has_no_token(
    open_runtime, csgclaw_home: Path, fake_package: Path
) -> None:
    runtime = open_runtime(runtime="builtin")

    box = runtime.create(agent_spec(csgclaw_home))
    wait_for(lambda: "fake runtime" in box.logs(5))

    command_line = Path(f"/proc/{record_of(runtime)['pid']}/cmdline").read_bytes()
    assert b"gateway" in command_line
    assert TOKEN.encode() not in command_line
    environment = json.loads((runtime.box_home / ".picoclaw" / "fake-runtime-env.json").read_text())
    assert environment["CSGCLAW_ACCESS_TOKEN"] == TOKEN


def test_the_previous_gateway_log_is_kept_as_dot_one(
    open_runtime, csgclaw_home: Path, fake_package: Path
) -> None:
    runtime = open_runtime(runtime="builtin")
    box = runtime.create(agent_spec(csgclaw_home))
    wait_for(lambda: "fake runtime" in box.logs(5))
    box.stop(force=True)

    box.start()

    wait_for(lambda: "fake runtime" in box.logs(5))
    previous = runtime.box_home / ".picoclaw" / "gateway.log.1"
    assert "fake runtime gateway -d" in previous.read_text()


@needs_bwrap
def test_real_bwrap_runs_the_interpreter_and_hides_the_state_home(
    open_runtime, csgclaw_home: Path, fake_package: Path
) -> None:
    (csgclaw_home / "config.toml").write_text('[server]\naccess_token = "host-only"\n')
    runtime = open_runtime(runtime="builtin", isolation="bwrap")

    box = runtime.create(agent_spec(csgclaw_home))

    assert box.info().state == "running"
    wait_for(lambda: "fake runtime gateway -d" in box.logs(5))
    environment = json.loads((runtime.box_home / ".picoclaw" / "fake-runtime-env.json").read_text())
    assert environment["HOME"] == "/home/picoclaw"
    assert environment["PYTHONPATH"] == "/opt/csgclaw/python"
    assert environment["CSGCLAW_ACCESS_TOKEN"] == TOKEN
    stdout, stderr = io.BytesIO(), io.BytesIO()
    probe = "import agent_runtime, httpx; print(agent_runtime.__file__)"
    assert box.exec([sys.executable, "-c", probe], stdout=stdout, stderr=stderr) == 0, stderr.getvalue()
    assert stdout.getvalue().decode().strip() == "/opt/csgclaw/python/agent_runtime/__init__.py"
    stdout, stderr = io.BytesIO(), io.BytesIO()
    assert box.exec(["cat", str(csgclaw_home / "config.toml")], stdout=stdout, stderr=stderr) != 0
    assert b"host-only" not in stdout.getvalue()
    project_file = Path(__file__).resolve().parents[2] / "manage.py"
    assert box.exec(["cat", str(project_file)], stdout=io.BytesIO(), stderr=io.BytesIO()) != 0


@needs_bwrap
def test_real_bwrap_imports_the_real_package(
    open_runtime, csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSGCLAW_RUNTIME_HEALTH_ADDR", "off")
    runtime = open_runtime(runtime="builtin", isolation="bwrap")
    # The real runtime starts too; a closed port keeps it reconnecting quietly until the box is removed.
    box = runtime.create(
        agent_spec(csgclaw_home, PICOCLAW_CHANNELS_CSGCLAW_BASE_URL="http://127.0.0.1:9", CSGCLAW_BASE_URL="")
    )
    stdout, stderr = io.BytesIO(), io.BytesIO()

    code = box.exec([sys.executable, "-c", "import agent_runtime.__main__"], stdout=stdout, stderr=stderr)

    assert code == 0, stderr.getvalue()
    assert record_of(runtime)["package"] == str(local_runtime.package_dir())


# --- status (§2.4) ----------------------------------------------------------------------------------------


def write_status(runtime: LocalRuntime, *, connected: bool, since_seconds_ago: float, error: str) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=since_seconds_ago)).isoformat().replace("+00:00", "Z")
    status = {"runtime": "builtin", "connected": connected, "since": since, "last_error": error}
    (runtime.box_home / ".picoclaw" / "runtime-status.json").write_text(json.dumps(status))


def test_a_runtime_not_connected_for_eleven_seconds_says_so(
    open_runtime, csgclaw_home: Path, fake_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    runtime = open_runtime(runtime="auto", isolation="auto", picoclaw_path=str(tmp_path / "none"))
    box = runtime.create(agent_spec(csgclaw_home))

    write_status(runtime, connected=False, since_seconds_ago=11, error="connect failed: refused")

    assert box.info().detail == (
        "built-in runtime (picoclaw not found); running without isolation (bubblewrap not found); "
        "runtime not connected: connect failed: refused"
    )
    write_status(runtime, connected=False, since_seconds_ago=5, error="connect failed: refused")
    assert box.info().detail.endswith("(bubblewrap not found)")
    write_status(runtime, connected=True, since_seconds_ago=60, error="")
    assert box.info().detail.endswith("(bubblewrap not found)")
    write_status(runtime, connected=False, since_seconds_ago=30, error="")
    assert box.info().detail.endswith("; runtime not connected: starting")


def test_a_missing_status_file_after_the_threshold_is_starting(
    open_runtime, csgclaw_home: Path, fake_package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime(runtime="builtin")
    status_path = runtime.box_home / ".picoclaw" / "runtime-status.json"
    status_path.parent.mkdir(parents=True)
    status_path.write_text('{"connected": true}')
    box = runtime.create(agent_spec(csgclaw_home))

    assert not status_path.exists()
    assert box.info().detail == "built-in runtime"
    monkeypatch.setattr(local_runtime, "RUNTIME_NOT_CONNECTED_AFTER", 0.0)
    assert box.info().detail == "built-in runtime; runtime not connected: starting"
    box.stop(force=True)
    assert box.info().detail == ""


def test_a_status_file_that_is_a_link_is_never_followed(
    open_runtime, csgclaw_home: Path, fake_package: Path, tmp_path: Path
) -> None:
    runtime = open_runtime(runtime="builtin")
    box = runtime.create(agent_spec(csgclaw_home))
    secret = tmp_path / "host-secret.json"
    secret.write_text('{"connected": false, "since": "2000-01-01T00:00:00Z", "last_error": "host secret"}')
    (runtime.box_home / ".picoclaw" / "runtime-status.json").symlink_to(secret)

    assert "host secret" not in box.info().detail


def test_a_status_file_below_a_linked_directory_is_never_read(
    open_runtime, csgclaw_home: Path, fake_package: Path, tmp_path: Path
) -> None:
    runtime = open_runtime(runtime="builtin")
    box = runtime.create(agent_spec(csgclaw_home))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "runtime-status.json").write_text(
        '{"connected": false, "since": "2000-01-01T00:00:00Z", "last_error": "host secret"}'
    )
    shutil.rmtree(runtime.box_home / ".picoclaw")
    (runtime.box_home / ".picoclaw").symlink_to(elsewhere, target_is_directory=True)

    assert "host secret" not in box.info().detail


def test_picoclaw_boxes_never_read_a_status_file(
    open_runtime, csgclaw_home: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(bin_dir / "picoclaw", FAKE_PICOCLAW)
    runtime = open_runtime()
    box = runtime.create(agent_spec(csgclaw_home))
    write_status(runtime, connected=False, since_seconds_ago=60, error="nope")

    assert box.info().detail == ""
