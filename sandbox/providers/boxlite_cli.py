"""The boxlite-cli provider: BoxLite micro-VMs driven through the `boxlite` command-line tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sandbox.providers.base import (
    BoxInfo,
    BoxNotFound,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    TailLogsMixin,
    ensure_dir,
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
    text,
)

if TYPE_CHECKING:
    from core.config import SandboxConfig

DEFAULT_EXECUTABLE = "boxlite"
# `run` pulls the image and boots the VM; a cold pull over a slow registry takes many minutes.
RUN_TIMEOUT = 30 * 60
COMMAND_TIMEOUT = 60

BOXLITE_STATES: dict[str, BoxState] = {
    "configured": "created",
    "created": "created",
    "running": "running",
    "stopping": "unknown",
    "stopped": "stopped",
}
NOT_FOUND_MARKERS = ("no such box", "not found")


def missing_executable_message(path: str) -> str:
    return f'boxlite-cli: executable "{path}" not found; install boxlite or set [sandbox].boxlite_cli_path'


def resolve_executable(configured: str) -> str:
    """An explicit path wins; else a `boxlite` installed next to this Python (pip), else PATH."""
    configured = configured.strip()
    if configured and configured != DEFAULT_EXECUTABLE:
        found = shutil.which(configured)
        if found is None:
            raise SandboxUnavailable(missing_executable_message(configured))
        return found
    beside_python = Path(sys.executable).parent / DEFAULT_EXECUTABLE
    found = shutil.which(str(beside_python)) or shutil.which(DEFAULT_EXECUTABLE)
    if found is None:
        raise SandboxUnavailable(missing_executable_message(DEFAULT_EXECUTABLE))
    return found


def validate_spec(spec: BoxSpec) -> None:
    if not spec.image.strip():
        raise SandboxError("invalid sandbox image: image is required")
    if spec.entrypoint:
        raise SandboxError("unsupported sandbox option: entrypoint")
    if any(not key.strip() for key in spec.env):
        raise SandboxError("invalid sandbox env: empty key")
    for mount in spec.mounts:
        if not mount.host_path.strip():
            raise SandboxError("invalid sandbox mount: host path is required")
        if not mount.guest_path.strip():
            raise SandboxError("invalid sandbox mount: guest path is required")


def run_arguments(spec: BoxSpec) -> list[str]:
    """The `run` subcommand for a spec, environment sorted by key so the command line is stable."""
    arguments = ["run", "--name", spec.name]
    if spec.detach:
        arguments.append("--detach")
    if spec.auto_remove:
        arguments.append("--rm")
    arguments += env_arguments(spec.env)
    for mount in spec.mounts:
        arguments += ["-v", mount_argument(mount)]
    return [*arguments, spec.image, *spec.cmd]


class BoxliteCliProvider:
    name = "boxlite-cli"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.cli_path = sandbox_config.boxlite_cli_path
        self.registries = list(sandbox_config.debian_registries)

    def open(self, home_dir: Path) -> BoxliteCliRuntime:
        executable = resolve_executable(self.cli_path)
        ensure_dir(Path(home_dir))
        return BoxliteCliRuntime(executable, Path(home_dir), self.registries)


class BoxliteCliRuntime:
    def __init__(self, executable: str, home: Path, registries: list[str]) -> None:
        self.executable = executable
        self.global_arguments = [executable, "--home", str(home)]
        for registry in registries:
            self.global_arguments += ["--registry", registry]

    def invoke(
        self,
        arguments: list[str],
        *,
        op: str,
        timeout: float = COMMAND_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return run_cli(
            [*self.global_arguments, *arguments],
            timeout=timeout,
            op=op,
            missing_message=missing_executable_message(self.executable),
            env=env,
        )

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

    def create(self, spec: BoxSpec) -> BoxliteCliBox:
        validate_spec(spec)
        stdout = self.check(
            run_arguments(spec), op="run boxlite cli box", timeout=RUN_TIMEOUT, env=env_values(spec.env)
        )
        # The id is the last line printed: image pull progress, when there is any, comes before it.
        lines = stdout.splitlines()
        return BoxliteCliBox(self, lines[-1].strip() if lines else spec.name)

    def get(self, id_or_name: str) -> BoxliteCliBox:
        return BoxliteCliBox(self, self.inspect(id_or_name).id)

    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        self.check(["rm", *(["-f"] if force else []), id_or_name], op="remove boxlite cli box")

    def close(self) -> None:
        """Every call is its own process; nothing stays open."""

    def inspect(self, id_or_name: str) -> BoxInfo:
        op = "inspect boxlite cli box"
        record = first_inspect_record(
            self.check(["inspect", "--format", "json", id_or_name], op=op), op=op, ref=id_or_name
        )
        status = record.get("Status") or nested(record, "State", "Status")
        return BoxInfo(
            id=str(record.get("Id") or id_or_name),
            name=str(record.get("Name") or ""),
            state=map_state(status, BOXLITE_STATES),
            created_at=parse_timestamp(record.get("Created")),
        )


def failure(op: str, exit_code: int, stderr: str) -> SandboxError:
    return cli_failure(op, exit_code, stderr, program="boxlite cli", not_found_markers=NOT_FOUND_MARKERS)


class BoxliteCliBox(TailLogsMixin):
    def __init__(self, runtime: BoxliteCliRuntime, box_id: str) -> None:
        self.runtime = runtime
        self.box_id = box_id

    def start(self) -> None:
        self.runtime.check(["start", self.box_id], op="start boxlite cli box")

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        if force:
            raise SandboxError("unsupported sandbox option: force stop")
        if timeout is not None:
            raise SandboxError("unsupported sandbox option: stop timeout")
        self.runtime.check(["stop", self.box_id], op="stop boxlite cli box")

    def info(self) -> BoxInfo:
        return self.runtime.inspect(self.box_id)

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """The command's own exit code is returned; only the CLI's own "no such box" error raises."""
        op = "run boxlite cli command"
        result = self.runtime.invoke(
            ["exec", self.box_id, "--", *argv], op=op, timeout=timeout or COMMAND_TIMEOUT
        )
        stdout.write(result.stdout)
        stderr.write(result.stderr)
        error = text(result.stderr)
        # A command inside the box may print "not found" itself; only the CLI's `Error:` line means the box.
        if result.returncode != 0 and error.startswith("Error:") and "no such box" in error.lower():
            raise BoxNotFound(f"{op}: sandbox not found: {error}")
        return result.returncode

    def close(self) -> None:
        """The handle is just an id."""
