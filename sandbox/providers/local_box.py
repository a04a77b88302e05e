"""One local box as the lifecycle sees it: start, stop, status, commands and logs (sandbox.md §9.5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import IO, Any, Protocol

from sandbox.agent_home import log_tail
from sandbox.boxspec import GUEST_HOME
from sandbox.providers.base import (
    BoxInfo,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    parse_timestamp,
    reported_as,
)
from sandbox.providers.local_host import process_alive
from sandbox.providers.local_runtime import RuntimeChoice, choice_from_record

EXEC_TIMEOUT = 60.0


class LocalBoxHost(Protocol):
    """What a box needs of the runtime that holds it (`local.LocalRuntime`).

    A protocol rather than an import of that class: local.py builds boxes, so it imports this module,
    and the arrow must not run back.
    """

    agent_home: Path
    box_home: Path

    def load(self, id_or_name: str) -> dict[str, Any]: ...

    def read_record(self, id_or_name: str) -> dict[str, Any]: ...

    def spawn(self, record: dict[str, Any]) -> None: ...

    def terminate(self, record: dict[str, Any], *, force: bool, timeout: float | None) -> None: ...

    def state_of(self, record: dict[str, Any]) -> BoxState: ...

    def status_detail(self, record: dict[str, Any]) -> str: ...

    def box_command(
        self, record: dict[str, Any], choice: RuntimeChoice, bwrap: str | None, argv: list[str]
    ) -> tuple[list[str], dict[str, str]]: ...


class LocalBox:
    def __init__(self, runtime: LocalBoxHost, box_id: str) -> None:
        self.runtime = runtime
        self.box_id = box_id

    @reported_as("start local box")
    def start(self) -> None:
        record = self.runtime.load(self.box_id)
        if not process_alive(record.get("pid")):
            self.runtime.spawn(record)

    @reported_as("stop local box")
    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        # Only the pid is needed, so a damaged state file never keeps a gateway from being stopped.
        self.runtime.terminate(self.runtime.read_record(self.box_id), force=force, timeout=timeout)

    @reported_as("inspect local box")
    def info(self) -> BoxInfo:
        record = self.runtime.load(self.box_id)
        state = self.runtime.state_of(record)
        return BoxInfo(
            id=record["id"],
            name=record["name"],
            state=state,
            created_at=parse_timestamp(record.get("created_at")),
            detail=self.runtime.status_detail(record) if state == "running" else "",
        )

    @reported_as("run local command")
    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """Runs on the host, inside the same bwrap binds when the gateway is isolated."""
        op = "run local command"
        record = self.runtime.load(self.box_id)
        box_home = self.runtime.box_home
        choice = choice_from_record(record)
        if record.get("isolation") == "bwrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                raise SandboxUnavailable(f"{op}: bubblewrap (bwrap) was not found")
            command, env = self.runtime.box_command(record, choice, bwrap, argv)
        else:
            guest_prefix = GUEST_HOME + "/"
            rewritten = [
                str(box_home / argument.removeprefix(guest_prefix))
                if argument.startswith(guest_prefix)
                else argument
                for argument in argv
            ]
            command, env = self.runtime.box_command(record, choice, None, rewritten)
        try:
            result = subprocess.run(
                command,
                cwd=box_home,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout or EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            stderr.write(f"{argv[0]}: command not found\n".encode())
            return 127
        except subprocess.TimeoutExpired as error:
            raise SandboxError(f"{op}: timed out after {timeout or EXEC_TIMEOUT:g} s") from error
        stdout.write(result.stdout)
        stderr.write(result.stderr)
        return result.returncode

    @reported_as("read local box logs")
    def logs(self, lines: int) -> str:
        """Reads the gateway log straight from the box home; no process is needed.

        The box owns that file: only a regular file reached without a link is read, and only its last
        MiB (security S5.1); anything else has no logs.
        """
        self.runtime.load(self.box_id)
        log_path = self.runtime.box_home / ".picoclaw" / "gateway.log"
        return log_tail(self.runtime.agent_home, log_path, lines)

    def close(self) -> None:
        """The handle is just an id."""
