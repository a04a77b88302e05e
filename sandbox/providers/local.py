"""The local provider (extension): PicoClaw as a host process per agent, isolated with bubblewrap."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

from sandbox.boxspec import GUEST_HOME, GUEST_PROJECTS, GUEST_WORKSPACE, render_picoclaw_files
from sandbox.providers.base import (
    BoxInfo,
    BoxNotFound,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    ensure_dir,
    first_line,
    parse_timestamp,
    write_private_file,
)
from sandbox.providers.local_host import (
    BOX_PATH,
    bwrap_arguments,
    bwrap_gateway_command,
    host_gateway_command,
    process_alive,
    remove_symlink,
    replace_with_symlink,
    signal_group,
    wait_group_gone,
)
from sandbox.providers.local_state import STATE_FILE_NAME, state_file_problem

if TYPE_CHECKING:
    from csgclaw_site.config import SandboxConfig

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# What the spawned launcher (sh or bwrap) itself prints; PicoClaw's output goes to its gateway log.
LAUNCH_LOG_NAME = "local-launch.log"
BOX_HOME_NAME = "home"
ISOLATION_MODES = ("auto", "bwrap", "none")
UNISOLATED_DETAIL = "running without isolation (bubblewrap not found)"
STOP_GRACE = 10.0
KILL_WAIT = 5.0
EXEC_TIMEOUT = 60.0
# A launcher that dies this fast never started the gateway (bad bwrap setup, missing shell, …).
STARTUP_CHECK = 0.2


def missing_picoclaw_message(path: str) -> str:
    return f'local: executable "{path}" not found; install picoclaw or set [sandbox].picoclaw_path'


def reported_as(op: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Providers raise only SandboxError (sandbox.md §2): any other failure of `op` becomes `<op>: <error>`.

    The host is full of ways to fail (a full disk, a file where a directory belongs, a pid from a damaged
    state file); each must reach the agent's status_detail, not escape as a traceback.
    """

    def decorate(operation: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(operation)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return operation(*args, **kwargs)
            except SandboxError:
                raise
            except Exception as error:
                raise SandboxError(f"{op}: {error}") from error

        return run

    return decorate


class LocalProvider:
    name = "local"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.picoclaw_path = sandbox_config.picoclaw_path.strip() or "picoclaw"
        self.isolation = sandbox_config.local_isolation.strip().lower() or "auto"

    @reported_as("open local runtime")
    def open(self, home_dir: Path) -> LocalRuntime:
        ensure_dir(Path(home_dir))
        return LocalRuntime(Path(home_dir), picoclaw_path=self.picoclaw_path, isolation=self.isolation)


class LocalRuntime:
    """One box per runtime home; the workspace and projects dirs are the host paths of the spec's mounts."""

    def __init__(self, home: Path, *, picoclaw_path: str, isolation: str) -> None:
        self.home = home
        self.box_home = home / BOX_HOME_NAME
        self.state_path = home / STATE_FILE_NAME
        self.launch_log_path = home / LAUNCH_LOG_NAME
        self.picoclaw_path = picoclaw_path
        self.isolation = isolation

    @reported_as("create local box")
    def create(self, spec: BoxSpec) -> LocalBox:
        op = "create local box"
        if self.state_path.exists():
            raise SandboxError(f'{op}: box "{spec.name}" already exists')
        mounts = {mount.guest_path: mount.host_path for mount in spec.mounts}
        for guest_path in (GUEST_WORKSPACE, GUEST_PROJECTS):
            if not mounts.get(guest_path, "").strip():
                raise SandboxError(f'{op}: the box spec has no mount for "{guest_path}"')
        record: dict[str, Any] = {
            "id": f"local-{spec.name}",
            "name": spec.name,
            "pid": None,
            "state": "created",
            "created_at": datetime.now(UTC).isoformat(),
            "spec": {
                "image": spec.image,
                "cmd": list(spec.cmd),
                "env": dict(spec.env),
                "workspace": mounts[GUEST_WORKSPACE],
                "projects": mounts[GUEST_PROJECTS],
            },
        }
        self.save(record)
        try:
            self.spawn(record)
        except Exception:
            # A box that never started leaves nothing behind, so the next attempt can create it again.
            self.state_path.unlink(missing_ok=True)
            raise
        return LocalBox(self, record["id"])

    @reported_as("get local box")
    def get(self, id_or_name: str) -> LocalBox:
        return LocalBox(self, self.load(id_or_name)["id"])

    @reported_as("remove local box")
    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        # Like stopping, removing needs only the pid: a damaged state file never makes a box undeletable.
        record = self.read_record(id_or_name)
        self.terminate(record, force=True, timeout=None)
        self.state_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing is held open; spawned gateways outlive the runtime on purpose."""

    def load(self, id_or_name: str) -> dict[str, Any]:
        """The box's state record, complete enough for every operation."""
        record = self.read_record(id_or_name)
        problem = state_file_problem(record)
        if problem:
            raise SandboxError(f"local: read {self.state_path}: {problem}")
        return record

    def read_record(self, id_or_name: str) -> dict[str, Any]:
        """The state record named `id_or_name`, as it is on disk."""
        try:
            record = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as error:
            raise SandboxError(f"local: read {self.state_path}: {error}") from error
        if not isinstance(record, dict) or id_or_name not in (record.get("id"), record.get("name")):
            raise BoxNotFound(f'local: box "{id_or_name}" not found')
        return record

    def save(self, record: dict[str, Any]) -> None:
        write_private_file(self.state_path, json.dumps(record, indent=2) + "\n")

    def resolve_isolation(self) -> tuple[str | None, str]:
        """The bwrap executable to use (None: no isolation) and the detail to show while running."""
        if self.isolation not in ISOLATION_MODES:
            raise SandboxError(
                f'local: unsupported [sandbox].local_isolation "{self.isolation}"; '
                'supported values are "auto", "bwrap" or "none"'
            )
        if self.isolation == "none":
            return None, ""
        bwrap = shutil.which("bwrap")
        if bwrap:
            return bwrap, ""
        if self.isolation == "bwrap":
            raise SandboxUnavailable(
                'local: bubblewrap (bwrap) is required by [sandbox].local_isolation = "bwrap" '
                "but was not found"
            )
        return None, UNISOLATED_DETAIL

    def spawn(self, record: dict[str, Any]) -> None:
        """Start the gateway for `record` and store its pid; the process outlives this server on purpose."""
        found = shutil.which(self.picoclaw_path)
        if found is None:
            raise SandboxUnavailable(missing_picoclaw_message(self.picoclaw_path))
        # which() keeps `./picoclaw` relative, but the gateway runs in the box home and bwrap needs an
        # absolute bind source; resolve it against the server's directory, where the setting was meant.
        picoclaw = os.path.abspath(found)
        bwrap, detail = self.resolve_isolation()
        spec = record["spec"]
        env: dict[str, str] = spec["env"]
        workspace, projects = Path(spec["workspace"]), Path(spec["projects"])
        picoclaw_home = ensure_dir(self.box_home / ".picoclaw")
        ensure_dir(workspace)
        ensure_dir(projects)
        render_picoclaw_files(
            picoclaw_home,
            base_url=env.get("CSGCLAW_BASE_URL", ""),
            bot_id=env.get("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID", ""),
            access_token=env.get("CSGCLAW_ACCESS_TOKEN", ""),
            model_id=env.get("CSGCLAW_LLM_MODEL_ID", ""),
        )
        if bwrap:
            remove_symlink(picoclaw_home / "workspace")
            remove_symlink(workspace / "projects")
            argv = bwrap_arguments(
                bwrap=bwrap,
                box_home=self.box_home,
                workspace=str(workspace),
                projects=str(projects),
                picoclaw=picoclaw,
                env=env,
            )
            argv += bwrap_gateway_command()
            process_env = {"PATH": os.environ.get("PATH", BOX_PATH)}
        else:
            if detail:
                logger.warning(
                    "local: bubblewrap (bwrap) not found; running agent %s without isolation", record["name"]
                )
            replace_with_symlink(picoclaw_home / "workspace", workspace)
            replace_with_symlink(workspace / "projects", projects)
            argv = host_gateway_command(picoclaw)
            process_env = {"PATH": os.environ.get("PATH", BOX_PATH), **env, "HOME": str(self.box_home)}
        with self.launch_log_path.open("wb") as launch_log:
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=self.box_home,
                    env=process_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=launch_log,
                    start_new_session=True,
                )
            except OSError as error:
                raise SandboxError(f"start local box: {error}") from error
        try:
            exit_code = process.wait(timeout=STARTUP_CHECK)
        except subprocess.TimeoutExpired:
            pass
        else:
            output = first_line(self.launch_log_path.read_text(encoding="utf-8", errors="replace"))
            raise SandboxError(
                f"start local box: the gateway exited at once with code {exit_code}: {output or 'no output'}"
            )
        # Reap the child when it exits so it never lingers as a zombie that looks alive.
        threading.Thread(target=process.wait, name=f"local-box-{record['name']}", daemon=True).start()
        record.update(
            pid=process.pid,
            state="running",
            isolation="bwrap" if bwrap else "none",
            executable=picoclaw,
            detail=detail,
        )
        self.save(record)

    def terminate(self, record: dict[str, Any], *, force: bool, timeout: float | None) -> None:
        pid = record.get("pid")
        # Signal the group only when its leader is verifiably our gateway: after a server restart the
        # recorded pid may belong to someone else.
        if isinstance(pid, int) and process_alive(pid):
            if not force:
                signal_group(pid, signal.SIGTERM)
                force = not wait_group_gone(pid, STOP_GRACE if timeout is None else timeout)
            if force:
                signal_group(pid, signal.SIGKILL)
                if not wait_group_gone(pid, KILL_WAIT):
                    raise SandboxError(f"stop local box: process group {pid} did not exit after SIGKILL")
        record["state"] = "stopped"
        self.save(record)

    def state_of(self, record: dict[str, Any]) -> BoxState:
        if process_alive(record.get("pid")):
            return "running"
        return "stopped" if record.get("state") == "stopped" else "exited"


class LocalBox:
    def __init__(self, runtime: LocalRuntime, box_id: str) -> None:
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
            detail=record.get("detail", "") if state == "running" else "",
        )

    @reported_as("run local command")
    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """Runs on the host, inside the same bwrap binds when the gateway is isolated."""
        op = "run local command"
        record = self.runtime.load(self.box_id)
        box_home = self.runtime.box_home
        spec = record["spec"]
        if record.get("isolation") == "bwrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                raise SandboxUnavailable(f"{op}: bubblewrap (bwrap) was not found")
            command = bwrap_arguments(
                bwrap=bwrap,
                box_home=box_home,
                workspace=spec["workspace"],
                projects=spec["projects"],
                picoclaw=record["executable"],
                env=spec["env"],
            )
            command += argv
            env = {"PATH": os.environ.get("PATH", BOX_PATH)}
        else:
            guest_prefix = GUEST_HOME + "/"
            command = [
                str(box_home / argument.removeprefix(guest_prefix))
                if argument.startswith(guest_prefix)
                else argument
                for argument in argv
            ]
            env = {"PATH": os.environ.get("PATH", BOX_PATH), **spec["env"], "HOME": str(box_home)}
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
        """Reads the gateway log straight from the box home; no process is needed."""
        self.runtime.load(self.box_id)
        try:
            text = (self.runtime.box_home / ".picoclaw" / "gateway.log").read_text(
                encoding="utf-8", errors="replace"
            )
        except FileNotFoundError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""

    def close(self) -> None:
        """The handle is just an id."""
