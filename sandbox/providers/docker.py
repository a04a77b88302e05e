"""The docker provider: one container per agent, driven through the `docker` command-line tool."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sandbox.providers.base import (
    BoxInfo,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    TailLogsMixin,
    first_line,
    map_state,
    mount_argument,
    parse_timestamp,
)
from sandbox.providers.commands import (
    cli_failure,
    env_arguments,
    env_values,
    first_inspect_record,
    nested,
    run_cli,
    snippet,
    text,
)

if TYPE_CHECKING:
    from core.config import SandboxConfig

DEFAULT_EXECUTABLE = "docker"
CONTAINER_PREFIX = "csgclaw-"
# `docker run` may pull the image first; like boxlite, allow a slow cold pull.
RUN_TIMEOUT = 30 * 60
COMMAND_TIMEOUT = 60

DOCKER_STATES: dict[str, BoxState] = {
    "created": "created",
    "running": "running",
    "restarting": "running",
    "paused": "stopped",
    "exited": "exited",
    "dead": "exited",
    "removing": "unknown",
}
NOT_FOUND_MARKERS = ("no such container", "no such object", "not found")
DAEMON_DOWN_MARKERS = ("cannot connect to the docker daemon", "is the docker daemon running", "docker.sock")
FULL_CONTAINER_ID = re.compile(r"[0-9a-f]{64}\Z")


def missing_executable_message(path: str) -> str:
    return f'docker: executable "{path}" not found; install docker or set [sandbox].docker_path'


def container_ref(id_or_name: str) -> str:
    """A box name (slug) always addresses `csgclaw-<slug>`; only a full container id is used as it is.

    A name that already starts with `csgclaw-` is prefixed too: slug `csgclaw-bot` must never reach
    slug `bot`'s container.
    """
    if FULL_CONTAINER_ID.match(id_or_name):
        return id_or_name
    return CONTAINER_PREFIX + id_or_name


def run_arguments(spec: BoxSpec) -> list[str]:
    arguments = ["run", "--name", container_ref(spec.name)]
    if spec.detach:
        arguments.append("--detach")
    if spec.auto_remove:
        arguments.append("--rm")
    for key in sorted(spec.labels):
        arguments += ["--label", f"{key}={spec.labels[key]}"]
    arguments += env_arguments(spec.env)
    for mount in spec.mounts:
        arguments += ["-v", mount_argument(mount)]
    return [*arguments, spec.image, *spec.cmd]


class DockerProvider:
    name = "docker"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.docker_path = sandbox_config.docker_path.strip() or DEFAULT_EXECUTABLE

    def open(self, home_dir: Path) -> DockerRuntime:
        """Checks the daemon; the runtime home is unused because containers live in the daemon."""
        executable = shutil.which(self.docker_path)
        if executable is None:
            raise SandboxUnavailable(missing_executable_message(self.docker_path))
        runtime = DockerRuntime(executable)
        runtime.check(["info", "--format", "{{.ServerVersion}}"], op="docker info")
        return runtime


class DockerRuntime:
    def __init__(self, executable: str) -> None:
        self.executable = executable

    def invoke(
        self,
        arguments: list[str],
        *,
        op: str,
        timeout: float = COMMAND_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        result = run_cli(
            [self.executable, *arguments],
            timeout=timeout,
            op=op,
            missing_message=missing_executable_message(self.executable),
            env=env,
        )
        stderr = text(result.stderr)
        if result.returncode != 0 and any(marker in stderr.lower() for marker in DAEMON_DOWN_MARKERS):
            raise SandboxUnavailable(f"docker: daemon is not reachable: {first_line(stderr)}")
        return result

    def check(
        self,
        arguments: list[str],
        *,
        op: str,
        timeout: float = COMMAND_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run a subcommand that must succeed; returns its trimmed stdout."""
        result = self.invoke(arguments, op=op, timeout=timeout, env=env)
        if result.returncode != 0:
            raise failure(op, result.returncode, text(result.stderr))
        return text(result.stdout)

    def create(self, spec: BoxSpec) -> DockerBox:
        if not spec.image.strip():
            raise SandboxError("invalid sandbox image: image is required")
        if spec.entrypoint:
            raise SandboxError("unsupported sandbox option: entrypoint")
        stdout = self.check(
            run_arguments(spec), op="docker run", timeout=RUN_TIMEOUT, env=env_values(spec.env)
        )
        # `docker run --detach` prints the id last; pull progress goes to stderr, but be safe.
        lines = stdout.splitlines()
        return DockerBox(self, lines[-1].strip() if lines else container_ref(spec.name))

    def get(self, id_or_name: str) -> DockerBox:
        return DockerBox(self, self.inspect(container_ref(id_or_name)).id)

    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        self.check(["rm", *(["-f"] if force else []), container_ref(id_or_name)], op="docker rm")

    def close(self) -> None:
        """Every call is its own process; nothing stays open."""

    def inspect(self, ref: str) -> BoxInfo:
        """`ref` is what docker itself takes: a container id or a full `csgclaw-<slug>` name."""
        op = "docker inspect"
        result = self.invoke(["inspect", ref], op=op)
        stdout, stderr = text(result.stdout), text(result.stderr)
        # A missing container prints `[]` and exits 1; read the array first so that case is "not found".
        if result.returncode != 0 and stdout != "[]":
            raise failure(op, result.returncode, stderr)
        record = first_inspect_record(stdout, op=op, ref=ref)
        container_id = record.get("Id")
        # The id is stored as the agent's box_id and used raw later; anything else there would be taken
        # for a slug and prefixed, reaching another agent's container.
        if not isinstance(container_id, str) or not FULL_CONTAINER_ID.match(container_id):
            raise SandboxError(f"{op}: unexpected output (no container id): {snippet(stdout)}")
        return BoxInfo(
            id=container_id,
            name=str(record.get("Name") or "").removeprefix("/"),
            state=map_state(nested(record, "State", "Status"), DOCKER_STATES),
            created_at=parse_timestamp(record.get("Created")),
        )


def failure(op: str, exit_code: int, stderr: str) -> SandboxError:
    return cli_failure(op, exit_code, stderr, program="docker", not_found_markers=NOT_FOUND_MARKERS)


class DockerBox(TailLogsMixin):
    def __init__(self, runtime: DockerRuntime, container_id: str) -> None:
        self.runtime = runtime
        self.container_id = container_id

    def start(self) -> None:
        self.runtime.check(["start", self.container_id], op="docker start")

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        if force:
            self.runtime.check(["kill", self.container_id], op="docker kill")
            return
        arguments = ["stop"]
        if timeout is not None:
            if not math.isfinite(timeout):
                raise SandboxError(f"docker stop: invalid timeout: {timeout}")
            arguments += ["-t", str(max(0, math.ceil(timeout)))]
        # The daemon waits up to the grace period before killing, so give the CLI that long plus a margin.
        self.runtime.check(
            [*arguments, self.container_id], op="docker stop", timeout=COMMAND_TIMEOUT + (timeout or 10)
        )

    def info(self) -> BoxInfo:
        return self.runtime.inspect(self.container_id)

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """The command's own exit code is returned; docker's own errors about the container raise."""
        op = "docker exec"
        result = self.runtime.invoke(
            ["exec", self.container_id, *argv], op=op, timeout=timeout or COMMAND_TIMEOUT
        )
        stdout.write(result.stdout)
        stderr.write(result.stderr)
        error = text(result.stderr)
        # Only docker's own messages are about the container; the command inside may print anything.
        if result.returncode != 0 and error.startswith(("Error response from daemon:", "Error:")):
            raise failure(op, result.returncode, error)
        return result.returncode

    def close(self) -> None:
        """The handle is just an id."""
