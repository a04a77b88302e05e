"""Tests for sandbox/providers/boxlite_cli.py against the fake CLI: argument lists, parsing, error texts."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.boxspec import runtime_home
from sandbox.providers.base import BoxNotFound, Mount, SandboxError, SandboxUnavailable
from sandbox.providers.boxlite_cli import BoxliteCliProvider, BoxliteCliRuntime
from sandbox.providers.commands import run_cli
from sandbox.tests.factories import (
    IMAGE,
    agent_spec,
    example_environment_mismatches,
    example_spec,
    provider_secrets_in,
    sandbox_config,
)
from sandbox.tests.fakes import FakeCli

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(30)]

MISSING = 'boxlite-cli: executable "{}" not found; install boxlite or set [sandbox].boxlite_cli_path'


@pytest.fixture
def cli(fake_cli: Callable[[str], FakeCli]) -> FakeCli:
    return fake_cli("boxlite")


def open_runtime(cli: FakeCli, home: Path, **config: object) -> BoxliteCliRuntime:
    provider = BoxliteCliProvider(sandbox_config(boxlite_cli_path=str(cli.path), **config))
    return provider.open(runtime_home(home, "manager", "boxlite"))


def inspect_json(**fields: object) -> str:
    record = {"Id": "box-123", "Name": "manager", "Created": "2026-04-24T10:00:00Z", "Status": "running"}
    return json.dumps([{**record, **fields}])


def test_manager_create_argument_list(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("run", stdout="box-123\n")
    spec = agent_spec(csgclaw_home, slug="manager", agent_id="u-manager")

    box = open_runtime(cli, csgclaw_home).create(spec)

    home = runtime_home(csgclaw_home, "manager", "boxlite")
    env_arguments = [
        part for key in sorted(spec.env) for part in ("-e", "HOME=/home/picoclaw" if key == "HOME" else key)
    ]
    assert cli.calls() == [
        [
            "--home", str(home), "--registry", "harbor.opencsg.com", "--registry", "docker.io",
            "run", "--name", "manager", "--detach",
            *env_arguments,
            "-v", f"{csgclaw_home}/agents/manager/workspace:/home/picoclaw/.picoclaw/workspace",
            "-v", f"{csgclaw_home}/projects:/home/picoclaw/.picoclaw/workspace/projects",
            IMAGE,
            "/bin/sh", "-c", "/usr/local/bin/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null",
        ]
    ]  # fmt: skip
    assert env_arguments[:4] == ["-e", "CSGCLAW_ACCESS_TOKEN", "-e", "CSGCLAW_BASE_URL"]
    # boxlite reads each `-e KEY` from its own environment, where the box values are (security S9).
    assert cli.inherited()[-1] == {key: value for key, value in spec.env.items() if key != "HOME"}
    assert box.box_id == "box-123"
    assert home.is_dir()


def test_registries_follow_the_config_order(cli: FakeCli, csgclaw_home: Path) -> None:
    runtime = open_runtime(
        cli, csgclaw_home, debian_registries=["mirror.example", "docker.io", "third.example"]
    )

    runtime.remove("manager")

    assert cli.calls()[0][2:8] == [
        "--registry",
        "mirror.example",
        "--registry",
        "docker.io",
        "--registry",
        "third.example",
    ]


def test_read_only_mounts_and_auto_remove(cli: FakeCli, csgclaw_home: Path) -> None:
    spec = agent_spec(csgclaw_home)
    spec.mounts.append(Mount("/srv/data", "/data", read_only=True))
    spec.auto_remove = True

    open_runtime(cli, csgclaw_home).create(spec)

    arguments = cli.calls()[0]
    assert arguments[arguments.index("--detach") + 1] == "--rm"
    assert "/srv/data:/data:ro" in arguments


def test_create_without_output_uses_the_name_as_id(cli: FakeCli, csgclaw_home: Path) -> None:
    box = open_runtime(cli, csgclaw_home).create(agent_spec(csgclaw_home))

    assert box.box_id == "alice"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": " "}, "invalid sandbox image: image is required"),
        ({"entrypoint": ["/init"]}, "unsupported sandbox option: entrypoint"),
        ({"env": {"": "x"}}, "invalid sandbox env: empty key"),
        ({"mounts": [Mount("", "/x")]}, "invalid sandbox mount: host path is required"),
        ({"mounts": [Mount("/x", "")]}, "invalid sandbox mount: guest path is required"),
    ],
)
def test_spec_validation_happens_before_running(
    change: dict, message: str, cli: FakeCli, csgclaw_home: Path
) -> None:
    spec = agent_spec(csgclaw_home)
    for field, value in change.items():
        setattr(spec, field, value)

    with pytest.raises(SandboxError) as raised:
        open_runtime(cli, csgclaw_home).create(spec)

    assert str(raised.value) == message
    assert cli.calls() == []


def test_get_and_info_parse_inspect_json(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())

    info = open_runtime(cli, csgclaw_home).get("manager").info()

    assert (info.id, info.name, info.state) == ("box-123", "manager", "running")
    assert info.created_at == datetime(2026, 4, 24, 10, tzinfo=UTC)
    assert cli.calls()[0][6:] == ["inspect", "--format", "json", "manager"]
    assert cli.calls()[1][6:] == ["inspect", "--format", "json", "box-123"]


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("configured", "created"),
        ("created", "created"),
        ("Running", "running"),
        ("stopping", "unknown"),
        ("stopped", "stopped"),
        ("exploded", "unknown"),
    ],
)
def test_state_mapping(status: str, state: str, cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json(Status=status))

    assert open_runtime(cli, csgclaw_home).inspect("manager").state == state


def test_status_falls_back_to_state_status_and_created_may_be_empty(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json(Status="", State={"Status": "stopped"}, Created=""))

    info = open_runtime(cli, csgclaw_home).inspect("manager")

    assert (info.state, info.created_at) == ("stopped", None)


def test_missing_box_is_not_found(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout="[]\n", stderr="Error: no such box: x\n", exit=1)

    with pytest.raises(BoxNotFound) as raised:
        open_runtime(cli, csgclaw_home).get("x")

    assert str(raised.value) == "inspect boxlite cli box: sandbox not found: Error: no such box: x"


def test_empty_array_with_success_is_not_found(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout="[]")

    with pytest.raises(BoxNotFound, match="inspect boxlite cli box: sandbox not found: x"):
        open_runtime(cli, csgclaw_home).get("x")


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (
            "Segmentation fault <core dumped>",
            "inspect boxlite cli box: unexpected output (not JSON): Segmentation fault",
        ),
        ('{"Id": "x"}', "inspect boxlite cli box: unexpected output (not a JSON array)"),
        ('["x"]', "inspect boxlite cli box: unexpected output (not a JSON object)"),
        ("", "inspect boxlite cli box: unexpected output (not JSON): (empty)"),
        (
            "[" * 100_000 + "]" * 100_000,
            "inspect boxlite cli box: unexpected output (nested too deeply): [[[",
        ),
    ],
)
def test_garbage_inspect_output_is_a_readable_error(
    stdout: str, message: str, cli: FakeCli, csgclaw_home: Path
) -> None:
    cli.answer("inspect", stdout=stdout)

    with pytest.raises(SandboxError) as raised:
        open_runtime(cli, csgclaw_home).get("manager")

    assert not isinstance(raised.value, BoxNotFound)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("argument", "detail"), [("man\0ager", "embedded null byte"), ("\ud800", "surrogates")]
)
def test_an_argument_the_cli_cannot_be_given_is_a_sandbox_error(
    argument: str, detail: str, cli: FakeCli, csgclaw_home: Path
) -> None:
    with pytest.raises(SandboxError, match=detail) as raised:
        open_runtime(cli, csgclaw_home).get(argument)

    assert str(raised.value).startswith("inspect boxlite cli box: ")


def test_start_stop_remove_arguments(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    runtime = open_runtime(cli, csgclaw_home)
    box = runtime.get("manager")

    box.start()
    box.stop()
    runtime.remove("manager")
    runtime.remove("box-123", force=True)

    assert [call[6:] for call in cli.calls()[1:]] == [
        ["start", "box-123"],
        ["stop", "box-123"],
        ["rm", "manager"],
        ["rm", "-f", "box-123"],
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"force": True}, "unsupported sandbox option: force stop"),
        ({"timeout": 5}, "unsupported sandbox option: stop timeout"),
    ],
)
def test_stop_options_are_unsupported(options: dict, message: str, cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    box = open_runtime(cli, csgclaw_home).get("manager")

    with pytest.raises(SandboxError) as raised:
        box.stop(**options)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        ("boom\n", "start boxlite cli box: boxlite cli exited with code 7: boom"),
        ("", "start boxlite cli box: boxlite cli exited with code 7: command failed"),
    ],
)
def test_other_failures_name_the_exit_code(
    stderr: str, message: str, cli: FakeCli, csgclaw_home: Path
) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("start", stderr=stderr, exit=7)
    box = open_runtime(cli, csgclaw_home).get("manager")

    with pytest.raises(SandboxError) as raised:
        box.start()

    assert not isinstance(raised.value, BoxNotFound)
    assert str(raised.value) == message


def test_remove_of_a_missing_box_is_not_found(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("rm", stderr="Error: box not found: ghost", exit=1)

    with pytest.raises(
        BoxNotFound, match=r"^remove boxlite cli box: sandbox not found: Error: box not found: ghost$"
    ):
        open_runtime(cli, csgclaw_home).remove("ghost", force=True)


def test_exec_passes_output_and_exit_code_through(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stdout="last line\n", stderr="sh: not found\n", exit=3)
    box = open_runtime(cli, csgclaw_home).get("manager")
    stdout, stderr = io.BytesIO(), io.BytesIO()

    exit_code = box.exec(["sh", "-c", "missing-tool"], stdout=stdout, stderr=stderr)

    assert exit_code == 3
    assert (stdout.getvalue(), stderr.getvalue()) == (b"last line\n", b"sh: not found\n")
    assert cli.calls()[1][6:] == ["exec", "box-123", "--", "sh", "-c", "missing-tool"]


def test_logs_tail_through_exec(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stdout="a\nb\n")
    box = open_runtime(cli, csgclaw_home).get("manager")

    assert box.logs(2) == "a\nb\n"
    assert cli.calls()[1][6:] == [
        "exec",
        "box-123",
        "--",
        "tail",
        "-n",
        "2",
        "/home/picoclaw/.picoclaw/gateway.log",
    ]


def test_exec_on_a_missing_box_is_not_found(cli: FakeCli, csgclaw_home: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stderr="Error: No such box: manager\n", exit=1)
    box = open_runtime(cli, csgclaw_home).get("manager")

    with pytest.raises(BoxNotFound, match="run boxlite cli command: sandbox not found"):
        box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO())


def test_configured_path_that_does_not_exist(tmp_path: Path, csgclaw_home: Path) -> None:
    missing = tmp_path / "nowhere" / "boxlite"
    provider = BoxliteCliProvider(sandbox_config(boxlite_cli_path=str(missing)))

    with pytest.raises(SandboxUnavailable) as raised:
        provider.open(runtime_home(csgclaw_home, "alice", "boxlite"))

    assert str(raised.value) == MISSING.format(missing)


def test_default_name_is_looked_up_on_path(
    cli: FakeCli, csgclaw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(cli.path.parent))

    runtime = BoxliteCliProvider(sandbox_config(boxlite_cli_path="boxlite")).open(csgclaw_home / "rt")

    assert runtime.executable == str(cli.path)


def test_default_name_missing_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sandbox.providers.boxlite_cli.sys.executable", str(tmp_path / "python"))

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteCliProvider(sandbox_config(boxlite_cli_path="")).open(tmp_path / "rt")

    assert str(raised.value) == MISSING.format("boxlite")


def test_a_boxlite_next_to_python_wins_over_path(
    cli: FakeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.providers.boxlite_cli.sys.executable", str(cli.path.parent / "python"))
    monkeypatch.setenv("PATH", "/nonexistent")

    runtime = BoxliteCliProvider(sandbox_config()).open(tmp_path / "rt")

    assert runtime.executable == str(cli.path)


def test_executable_vanishing_after_open_is_unavailable(cli: FakeCli, csgclaw_home: Path) -> None:
    runtime = open_runtime(cli, csgclaw_home)
    cli.path.unlink()

    with pytest.raises(SandboxUnavailable, match=r"^boxlite-cli: executable \".*boxlite\" not found"):
        runtime.remove("manager")


def test_run_cli_times_out_with_the_operation_name() -> None:
    with pytest.raises(SandboxError, match=r"^run boxlite cli box: timed out after 0.2 s$"):
        run_cli(["sleep", "5"], timeout=0.2, op="run boxlite cli box", missing_message="unused")


def test_no_secret_of_the_box_is_on_the_boxlite_command_line(cli: FakeCli, csgclaw_home: Path) -> None:
    secrets = {"CSGCLAW_ACCESS_TOKEN": "agent-token-5f1e", "PICOCLAW_CHANNELS_FEISHU_APP_SECRET": "fs-9c2d"}
    spec = agent_spec(csgclaw_home, **secrets)

    open_runtime(cli, csgclaw_home).create(spec)

    [run] = cli.calls()
    assert not [argument for argument in run if any(value in argument for value in secrets.values())]
    assert {key: cli.inherited()[-1][key] for key in secrets} == secrets


@pytest.mark.usefixtures("provider_in_server_env")
def test_the_box_gets_every_section_6_2_variable_and_no_provider_key(
    cli: FakeCli, csgclaw_home: Path
) -> None:
    open_runtime(cli, csgclaw_home).create(example_spec(csgclaw_home))

    handed = cli.box_environment()
    assert example_environment_mismatches(handed) == {}
    assert provider_secrets_in(handed) == []
