"""Tests for sandbox/providers/docker.py against the fake CLI: argument lists, parsing, error texts."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.providers.base import BoxNotFound, SandboxError, SandboxUnavailable
from sandbox.providers.docker import DockerBox, DockerProvider, DockerRuntime, container_ref
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

CONTAINER_ID = "4f" * 32
DAEMON_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
    "See 'docker --help'.\n"
)


@pytest.fixture
def cli(fake_cli: Callable[[str], FakeCli]) -> FakeCli:
    return fake_cli("docker")


def open_runtime(cli: FakeCli, tmp_path: Path) -> DockerRuntime:
    return DockerProvider(sandbox_config(docker_path=str(cli.path))).open(tmp_path / "unused")


def inspect_json(**state: object) -> str:
    record = {
        "Id": CONTAINER_ID,
        "Name": "/csgclaw-alice",
        "Created": "2026-04-24T10:00:00.123456789Z",
        "State": {"Status": "running", **state},
    }
    return json.dumps([record])


def test_open_checks_the_daemon(cli: FakeCli, tmp_path: Path) -> None:
    open_runtime(cli, tmp_path)

    assert cli.calls() == [["info", "--format", "{{.ServerVersion}}"]]
    assert not (tmp_path / "unused").exists()


def test_daemon_down(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("info", stderr=DAEMON_DOWN, exit=1)

    with pytest.raises(SandboxUnavailable) as raised:
        open_runtime(cli, tmp_path)

    assert str(raised.value) == (
        "docker: daemon is not reachable: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?"
    )


def test_other_info_failures_name_the_exit_code(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("info", stderr="permission denied while trying to connect\n", exit=1)

    with pytest.raises(SandboxError) as raised:
        open_runtime(cli, tmp_path)

    assert not isinstance(raised.value, SandboxUnavailable)
    assert (
        str(raised.value)
        == "docker info: docker exited with code 1: permission denied while trying to connect"
    )


def test_missing_executable(tmp_path: Path) -> None:
    missing = tmp_path / "docker"

    with pytest.raises(SandboxUnavailable) as raised:
        DockerProvider(sandbox_config(docker_path=str(missing))).open(tmp_path)

    assert (
        str(raised.value)
        == f'docker: executable "{missing}" not found; install docker or set [sandbox].docker_path'
    )


def test_create_argument_list(cli: FakeCli, tmp_path: Path, csgclaw_home: Path) -> None:
    cli.answer("run", stdout=CONTAINER_ID + "\n")
    spec = agent_spec(csgclaw_home)

    box = open_runtime(cli, tmp_path).create(spec)

    env_arguments = [
        part for key in sorted(spec.env) for part in ("-e", "HOME=/home/picoclaw" if key == "HOME" else key)
    ]
    assert cli.calls()[1] == [
        "run", "--name", "csgclaw-alice", "--detach", "--label", "csgclaw.agent_id=u-alice",
        *env_arguments,
        "-v", f"{csgclaw_home}/agents/alice/workspace:/home/picoclaw/.picoclaw/workspace",
        "-v", f"{csgclaw_home}/projects:/home/picoclaw/.picoclaw/workspace/projects",
        IMAGE,
        "/bin/sh", "-c", "/usr/local/bin/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null",
    ]  # fmt: skip
    assert box.container_id == CONTAINER_ID
    # docker reads each `-e KEY` from its own environment, where the box values are (security S9).
    assert cli.inherited()[1] == {key: value for key, value in spec.env.items() if key != "HOME"}


def test_no_secret_of_the_box_is_on_the_docker_command_line(
    cli: FakeCli, tmp_path: Path, csgclaw_home: Path
) -> None:
    cli.answer("run", stdout=CONTAINER_ID + "\n")
    secrets = {"CSGCLAW_ACCESS_TOKEN": "agent-token-5f1e", "PICOCLAW_CHANNELS_FEISHU_APP_SECRET": "fs-9c2d"}
    spec = agent_spec(csgclaw_home, **secrets)

    open_runtime(cli, tmp_path).create(spec)

    for call in cli.calls():
        assert not [argument for argument in call if any(value in argument for value in secrets.values())]
    assert {key: cli.inherited()[1][key] for key in secrets} == secrets


@pytest.mark.usefixtures("provider_in_server_env")
def test_the_container_gets_every_section_6_2_variable_and_no_provider_key(
    cli: FakeCli, tmp_path: Path, csgclaw_home: Path
) -> None:
    cli.answer("run", stdout=CONTAINER_ID + "\n")

    open_runtime(cli, tmp_path).create(example_spec(csgclaw_home))

    handed = cli.box_environment()
    assert example_environment_mismatches(handed) == {}
    assert provider_secrets_in(handed) == []


def test_create_with_auto_remove_and_validation(cli: FakeCli, tmp_path: Path, csgclaw_home: Path) -> None:
    spec = agent_spec(csgclaw_home)
    spec.auto_remove = True
    runtime = open_runtime(cli, tmp_path)

    box = runtime.create(spec)
    spec.entrypoint = ["/init"]
    with pytest.raises(SandboxError, match=r"^unsupported sandbox option: entrypoint$"):
        runtime.create(spec)

    assert cli.calls()[1][:5] == ["run", "--name", "csgclaw-alice", "--detach", "--rm"]
    assert box.container_id == "csgclaw-alice"
    assert len(cli.calls()) == 2


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        ("alice", "csgclaw-alice"),
        ("csgclaw-alice", "csgclaw-csgclaw-alice"),
        (CONTAINER_ID, CONTAINER_ID),
        ("deadbeef", "csgclaw-deadbeef"),
    ],
)
def test_names_address_prefixed_containers(key: str, ref: str) -> None:
    assert container_ref(key) == ref


def test_slugs_bot_and_csgclaw_bot_never_share_a_container(
    cli: FakeCli, tmp_path: Path, csgclaw_home: Path
) -> None:
    runtime = open_runtime(cli, tmp_path)
    cli.answer("inspect", stdout="[]\n", stderr="Error: No such object\n", exit=1)

    runtime.create(agent_spec(csgclaw_home, slug="csgclaw-bot", agent_id="u-csgclaw-bot"))
    for slug in ("bot", "csgclaw-bot"):
        with pytest.raises(BoxNotFound):
            runtime.get(slug)
        runtime.remove(slug, force=True)

    assert [call[:3] for call in cli.calls()[1:]] == [
        ["run", "--name", "csgclaw-csgclaw-bot"],
        ["inspect", "csgclaw-bot"],
        ["rm", "-f", "csgclaw-bot"],
        ["inspect", "csgclaw-csgclaw-bot"],
        ["rm", "-f", "csgclaw-csgclaw-bot"],
    ]


def test_a_box_made_from_the_container_name_is_inspected_by_that_name(
    cli: FakeCli, tmp_path: Path, csgclaw_home: Path
) -> None:
    box = open_runtime(cli, tmp_path).create(agent_spec(csgclaw_home, slug="csgclaw-bot"))
    cli.answer("inspect", stdout=inspect_json())

    assert box.info().id == CONTAINER_ID
    assert cli.calls()[2] == ["inspect", "csgclaw-csgclaw-bot"]


@pytest.mark.parametrize("record", [{}, {"Id": ""}, {"Id": 42}, {"Id": "sha256:" + CONTAINER_ID}])
def test_an_inspect_record_without_a_container_id_is_an_error(
    record: dict[str, object], cli: FakeCli, tmp_path: Path
) -> None:
    cli.answer("inspect", stdout=json.dumps([{"Name": "/csgclaw-alice", **record}]))

    with pytest.raises(SandboxError, match=r"^docker inspect: unexpected output \(no container id\): "):
        open_runtime(cli, tmp_path).get("alice")


def test_get_and_info(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())

    info = open_runtime(cli, tmp_path).get("alice").info()

    assert (info.id, info.name, info.state) == (CONTAINER_ID, "csgclaw-alice", "running")
    assert info.created_at == datetime(2026, 4, 24, 10, 0, 0, 123456, tzinfo=UTC)
    assert cli.calls()[1:] == [["inspect", "csgclaw-alice"], ["inspect", CONTAINER_ID]]


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("created", "created"),
        ("running", "running"),
        ("restarting", "running"),
        ("paused", "stopped"),
        ("exited", "exited"),
        ("dead", "exited"),
        ("removing", "unknown"),
        ("", "unknown"),
    ],
)
def test_state_mapping(status: str, state: str, cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json(Status=status))

    assert open_runtime(cli, tmp_path).get("alice").info().state == state


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        ("[]\n", "Error: No such object: csgclaw-ghost\n"),
        ("", "Error response from daemon: No such container: x\n"),
    ],
)
def test_missing_container_is_not_found(stdout: str, stderr: str, cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=stdout, stderr=stderr, exit=1)

    with pytest.raises(BoxNotFound, match=r"^docker inspect: sandbox not found"):
        open_runtime(cli, tmp_path).get("ghost")


def test_garbage_inspect_output_is_a_readable_error(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout="<html>proxy error</html>")

    with pytest.raises(SandboxError) as raised:
        open_runtime(cli, tmp_path).get("alice")

    assert str(raised.value) == "docker inspect: unexpected output (not JSON): <html>proxy error</html>"


def test_absurdly_nested_inspect_output_is_a_readable_error(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout="[" * 100_000 + "]" * 100_000)

    with pytest.raises(
        SandboxError, match=r"^docker inspect: unexpected output \(nested too deeply\): \[\[\["
    ):
        open_runtime(cli, tmp_path).get("alice")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda runtime, box: runtime.get("ali\0ce"), "docker inspect: embedded null byte"),
        (lambda runtime, box: runtime.remove("ali\0ce"), "docker rm: embedded null byte"),
        (
            lambda runtime, box: box.exec(["echo", "\0"], stdout=io.BytesIO(), stderr=io.BytesIO()),
            "docker exec: embedded null byte",
        ),
        (
            lambda runtime, box: box.exec(["echo", "\ud800"], stdout=io.BytesIO(), stderr=io.BytesIO()),
            "docker exec: 'utf-8' codec can't encode character '\\ud800' in position 0: "
            "surrogates not allowed",
        ),
        (
            lambda runtime, box: box.exec(
                ["true"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=math.inf
            ),
            "docker exec: cannot convert float infinity to integer",
        ),
        (lambda runtime, box: box.stop(timeout=math.inf), "docker stop: invalid timeout: inf"),
        (lambda runtime, box: box.stop(timeout=math.nan), "docker stop: invalid timeout: nan"),
    ],
)
def test_arguments_docker_cannot_be_given_are_a_sandbox_error(
    call: Callable[[DockerRuntime, DockerBox], object], message: str, cli: FakeCli, tmp_path: Path
) -> None:
    cli.answer("inspect", stdout=inspect_json())
    runtime = open_runtime(cli, tmp_path)
    box = runtime.get("alice")

    with pytest.raises(SandboxError) as raised:
        call(runtime, box)

    assert str(raised.value) == message


def test_lifecycle_arguments(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    runtime = open_runtime(cli, tmp_path)
    box = runtime.get("alice")

    box.start()
    box.stop()
    box.stop(timeout=4.2)
    box.stop(force=True)
    runtime.remove("alice")
    runtime.remove(CONTAINER_ID, force=True)

    assert cli.calls()[2:] == [
        ["start", CONTAINER_ID],
        ["stop", CONTAINER_ID],
        ["stop", "-t", "5", CONTAINER_ID],
        ["kill", CONTAINER_ID],
        ["rm", "csgclaw-alice"],
        ["rm", "-f", CONTAINER_ID],
    ]


def test_failure_names_the_exit_code(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("start", stderr="driver failed programming external connectivity\n", exit=7)
    box = open_runtime(cli, tmp_path).get("alice")

    with pytest.raises(SandboxError) as raised:
        box.start()

    assert (
        str(raised.value)
        == "docker start: docker exited with code 7: driver failed programming external connectivity"
    )


def test_daemon_going_down_later_is_unavailable(cli: FakeCli, tmp_path: Path) -> None:
    runtime = open_runtime(cli, tmp_path)
    cli.answer("rm", stderr=DAEMON_DOWN, exit=1)

    with pytest.raises(SandboxUnavailable, match=r"^docker: daemon is not reachable: Cannot connect"):
        runtime.remove("alice")


def test_exec_passes_the_command_without_separator(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stdout="x\n", stderr="tail: cannot open 'y': No such file or directory\n", exit=1)
    box = open_runtime(cli, tmp_path).get("alice")
    stdout, stderr = io.BytesIO(), io.BytesIO()

    exit_code = box.exec(["tail", "-n", "5", "y"], stdout=stdout, stderr=stderr)

    assert exit_code == 1
    assert stdout.getvalue() == b"x\n"
    assert b"No such file" in stderr.getvalue()
    assert cli.calls()[2] == ["exec", CONTAINER_ID, "tail", "-n", "5", "y"]


def test_exec_on_a_missing_container_is_not_found(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stderr="Error response from daemon: No such container: 4f4f\n", exit=1)
    box = open_runtime(cli, tmp_path).get("alice")

    with pytest.raises(BoxNotFound, match=r"^docker exec: sandbox not found"):
        box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO())


def test_docker_errors_from_exec_raise_instead_of_passing_as_exit_codes(cli: FakeCli, tmp_path: Path) -> None:
    cli.answer("inspect", stdout=inspect_json())
    cli.answer("exec", stderr="Error response from daemon: container 4f4f is not running\n", exit=1)
    box = open_runtime(cli, tmp_path).get("alice")

    with pytest.raises(SandboxError) as raised:
        box.logs(5)

    assert not isinstance(raised.value, BoxNotFound)
    assert str(raised.value) == (
        "docker exec: docker exited with code 1: Error response from daemon: container 4f4f is not running"
    )
