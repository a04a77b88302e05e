"""The local provider (extension): an agent runtime as a host process per agent, isolated with bubblewrap."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import runtimes
from sandbox.agent_home import directory_ensure
from sandbox.boxspec import (
    GUEST_HOME,
    GUEST_PROJECTS,
    GUEST_WORKSPACE,
    RUNTIME_LABEL,
    merge_box_environment,
    permitted_env_extras,
    render_picoclaw_files,
)
from sandbox.providers import local_host, local_runtime
from sandbox.providers.base import (
    BoxNotFound,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    ensure_dir,
    first_line,
    reported_as,
    write_private_file,
)
from sandbox.providers.local_box import LocalBox
from sandbox.providers.local_host import (
    box_process_env,
    bwrap_arguments,
    process_alive,
    remove_symlink,
    replace_with_symlink,
    signal_group,
    wait_group_gone,
)
from sandbox.providers.local_runtime import (
    STATUS_FILE_NAME,
    RuntimeChoice,
    bwrap_gateway_command,
    bwrap_runtime_env,
    choose_runtime,
    host_gateway_command,
    host_runtime_env,
    program_binds,
    record_fields,
)
from sandbox.providers.local_state import STATE_FILE_NAME, state_file_problem

if TYPE_CHECKING:
    from core.config import SandboxConfig

logger = logging.getLogger(__name__)

# What the spawned launcher (sh or bwrap) itself prints; the runtime's output goes to its gateway log.
LAUNCH_LOG_NAME = "local-launch.log"
BOX_HOME_NAME = "home"
ISOLATION_MODES = ("auto", "bwrap", "none")
UNISOLATED_DETAIL = "running without isolation (bubblewrap not found)"
STOP_GRACE = 10.0
KILL_WAIT = 5.0
# A launcher that dies this fast never started the gateway (bad bwrap setup, missing shell, …).
STARTUP_CHECK = 0.2


class LocalProvider:
    name = "local"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.picoclaw_path = sandbox_config.picoclaw_path.strip() or "picoclaw"
        self.isolation = sandbox_config.local_isolation.strip().lower() or "auto"
        self.runtime_setting = sandbox_config.runtime

    @reported_as("open local runtime")
    def open(self, home_dir: Path) -> LocalRuntime:
        ensure_dir(Path(home_dir))
        return LocalRuntime(
            Path(home_dir),
            picoclaw_path=self.picoclaw_path,
            isolation=self.isolation,
            runtime_setting=self.runtime_setting,
        )


class LocalRuntime:
    """One box per runtime home; the workspace and projects dirs are the host paths of the spec's mounts."""

    def __init__(self, home: Path, *, picoclaw_path: str, isolation: str, runtime_setting: str = "") -> None:
        self.home = home
        # Runtime homes are `<agent home>/<home_dir_name>` (boxspec.runtime_home); paths in the agent home
        # are reported relative to it.
        self.agent_home = home.parent
        self.box_home = home / BOX_HOME_NAME
        self.state_path = home / STATE_FILE_NAME
        self.launch_log_path = home / LAUNCH_LOG_NAME
        self.picoclaw_path = picoclaw_path
        self.isolation = isolation
        self.runtime_setting = runtime_setting

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
                "labels": dict(spec.labels),
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

    def choose(self, record: dict[str, Any]) -> RuntimeChoice:
        """The runtime this spawn runs (§2.2), decided afresh each time: picoclaw may have come or gone."""
        labels = record["spec"].get("labels")
        label = labels.get(RUNTIME_LABEL) if isinstance(labels, dict) else None
        choice = choose_runtime(
            label=label if isinstance(label, str) else "",
            setting=self.runtime_setting,
            picoclaw_path=self.picoclaw_path,
        )
        if choice.fallback:
            logger.warning(
                'local: picoclaw executable "%s" not found; starting the built-in runtime for agent %s',
                self.picoclaw_path,
                record["name"],
            )
        elif choice.runtime == runtimes.BUILTIN:
            logger.info("local: starting the built-in runtime for agent %s", record["name"])
        return choice

    def box_command(
        self, record: dict[str, Any], choice: RuntimeChoice, bwrap: str | None, argv: list[str]
    ) -> tuple[list[str], dict[str, str]]:
        """`argv` as the box runs it, with the process environment to start it with.

        The box environment travels in that process environment, never on the command line (security S9).
        """
        spec = record["spec"]
        if bwrap:
            prefix = bwrap_arguments(
                bwrap=bwrap,
                box_home=self.box_home,
                workspace=spec["workspace"],
                projects=spec["projects"],
                binds=program_binds(choice),
                setenv=permitted_env_extras(spec["env"], bwrap_runtime_env(choice, os.environ)),
            )
            return prefix + argv, box_process_env(spec["env"], home=GUEST_HOME)
        env = merge_box_environment(spec["env"], host_runtime_env(choice, os.environ))
        host_path = os.environ.get("PATH", local_host.BOX_PATH)
        return argv, box_process_env(env, home=str(self.box_home), path=host_path)

    def spawn(self, record: dict[str, Any]) -> None:
        """Start the gateway for `record` and store its pid; the process outlives this server on purpose."""
        choice = self.choose(record)
        bwrap, detail = self.resolve_isolation()
        spec = record["spec"]
        env: dict[str, str] = spec["env"]
        workspace, projects = Path(spec["workspace"]), Path(spec["projects"])
        picoclaw_home = self.box_home / ".picoclaw"
        # The box writes its home and workspace: a link planted there is refused, not followed (S5.2).
        render_picoclaw_files(
            picoclaw_home,
            base_url=env.get("CSGCLAW_BASE_URL", ""),
            bot_id=env.get("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID", ""),
            access_token=env.get("CSGCLAW_ACCESS_TOKEN", ""),
            model_id=env.get("CSGCLAW_LLM_MODEL_ID", ""),
            agent_home=self.agent_home,
        )
        if _is_below(workspace, self.agent_home):
            directory_ensure(self.agent_home, workspace)
        else:
            ensure_dir(workspace)
        ensure_dir(projects)
        # A status file of an earlier run describes a process that is gone; this run writes its own.
        (picoclaw_home / STATUS_FILE_NAME).unlink(missing_ok=True)
        if bwrap:
            remove_symlink(picoclaw_home / "workspace")
            remove_symlink(workspace / "projects")
            argv, process_env = self.box_command(
                record, choice, bwrap, bwrap_gateway_command(choice, os.environ)
            )
        else:
            if detail:
                logger.warning(
                    "local: bubblewrap (bwrap) not found; running agent %s without isolation", record["name"]
                )
            replace_with_symlink(picoclaw_home / "workspace", workspace)
            replace_with_symlink(workspace / "projects", projects)
            argv, process_env = self.box_command(
                record, choice, None, host_gateway_command(choice, os.environ)
            )
        spawned_at = time.time()
        launch_log_fd = os.open(
            self.launch_log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600
        )
        with os.fdopen(launch_log_fd, "wb") as launch_log:
            os.fchmod(launch_log.fileno(), 0o600)
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
            detail=detail,
            spawned_at=spawned_at,
            **record_fields(choice),
        )
        self.save(record)

    def status_detail(self, record: dict[str, Any]) -> str:
        """`status_detail` of a running box (§2.4): runtime, isolation and connection, joined by `; `."""
        builtin = record.get("runtime") == runtimes.BUILTIN
        parts = []
        if builtin:
            parts.append("built-in runtime" + (" (picoclaw not found)" if record.get("fallback") else ""))
        if isinstance(record.get("detail"), str) and record["detail"]:
            parts.append(record["detail"])
        if builtin:
            spawned_at = record.get("spawned_at")
            parts.append(
                local_runtime.not_connected_detail(
                    self.agent_home,
                    self.box_home / ".picoclaw" / STATUS_FILE_NAME,
                    spawned_at=spawned_at if isinstance(spawned_at, int | float) else None,
                )
            )
        return "; ".join(part for part in parts if part)

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


def _is_below(path: Path, root: Path) -> bool:
    return Path(os.path.normpath(path)).is_relative_to(os.path.normpath(root))
