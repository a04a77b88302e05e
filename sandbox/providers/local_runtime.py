"""The local provider's agent runtimes (builtin-runtime.md §2.2–§2.4): PicoClaw or the built-in one.

Which one a spawn runs, what the built-in one needs from the host (the server's interpreter and the
`agent_runtime` package), how it is launched, and what its status file says about the connection.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import runtimes
from sandbox.agent_home import file_read as agent_home_file_read
from sandbox.providers.base import SandboxUnavailable, parse_timestamp

BWRAP_PICOCLAW = "/opt/csgclaw/picoclaw"
BWRAP_PYTHON_PATH = "/opt/csgclaw/python"
BWRAP_PACKAGE = f"{BWRAP_PYTHON_PATH}/agent_runtime"
PACKAGE_NAME = "agent_runtime"
STATUS_FILE_NAME = "runtime-status.json"
# Already bound read-only into every bwrap box, so an interpreter living there needs no bind of its own.
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/etc")
# A runtime that has not connected this long after its spawn (or since it lost the stream) is shown as
# not connected; shorter gaps are ordinary start-up and reconnect backoff. Tests patch it.
RUNTIME_NOT_CONNECTED_AFTER = 10.0
# The status file is a few hundred bytes; anything bigger is not ours to read.
STATUS_FILE_MAX_BYTES = 64 * 1024
STATUS_ERROR_MAX_CHARS = 300
RUNTIME_KNOB_PREFIX = "CSGCLAW_RUNTIME_"
BACKOFF_SCALE_KNOB = "CSGCLAW_RUNTIME_BACKOFF_SCALE"
# A built-in runtime that crashes is started again by the shell that launched it: after 1 s, doubling to
# 30 s, and from 1 s again after a run of a minute or more (a crash loop backs off, a rare crash does not).
# Exit 0 is a requested stop and exit 2 a configuration error that a restart cannot fix.
RESTART_DELAYS = (1, 2, 4, 8, 16, 30)
RESTART_RESET_AFTER = 60


@dataclass(frozen=True)
class RuntimeChoice:
    """What a spawn runs: `picoclaw` (with its executable) or `builtin` (with interpreter and package)."""

    runtime: str
    fallback: bool = False
    executable: str = ""
    python: str = ""
    package: str = ""


def missing_picoclaw_message(path: str) -> str:
    return f'local: executable "{path}" not found; install picoclaw or set [sandbox].picoclaw_path'


def choose_runtime(*, label: str, setting: str, picoclaw_path: str) -> RuntimeChoice:
    """The runtime of one spawn (§2.2); the first match wins.

    The built-in runtime when asked for, PicoClaw when asked for, else whichever exists: only a missing
    picoclaw falls back, one that is found but fails stays a start error.
    """
    requested = runtimes.requested_runtime(label=label, setting=setting)
    if requested == runtimes.BUILTIN:
        return builtin_choice(fallback=False)
    found = shutil.which(picoclaw_path)
    if found is None:
        if requested == runtimes.PICOCLAW:
            raise SandboxUnavailable(missing_picoclaw_message(picoclaw_path))
        return builtin_choice(fallback=True)
    # which() keeps `./picoclaw` relative, but the gateway runs in the box home and bwrap needs an
    # absolute bind source; resolve it against the server's directory, where the setting was meant.
    return RuntimeChoice(runtime=runtimes.PICOCLAW, executable=os.path.abspath(found))


def builtin_choice(*, fallback: bool) -> RuntimeChoice:
    return RuntimeChoice(
        runtime=runtimes.BUILTIN, fallback=fallback, python=sys.executable, package=str(package_dir())
    )


def package_dir() -> Path:
    """The real directory of `agent_runtime`, found without importing it (sandbox must not depend on it)."""
    spec = importlib.util.find_spec(PACKAGE_NAME)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    candidates = [Path(location) for location in locations]
    candidates.append(Path(__file__).resolve().parents[2] / PACKAGE_NAME)
    for candidate in candidates:
        if (candidate / "__main__.py").is_file():
            return Path(os.path.realpath(candidate))
    raise SandboxUnavailable(f"local: the built-in runtime package {PACKAGE_NAME} was not found")


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def interpreter_roots(python: str) -> list[str]:
    """The directories the interpreter `python` needs inside a bwrap box, each bound read-only at itself.

    Real paths of the prefixes and of the interpreter's own directory, minus those the system binds
    already cover and those inside another one.
    """
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    candidates = [os.path.realpath(path) for path in prefixes]
    candidates.append(os.path.dirname(os.path.realpath(python)))
    distinct = [
        path
        for index, path in enumerate(candidates)
        if path not in candidates[:index] and not any(_inside(path, system) for system in SYSTEM_DIRS)
    ]
    return [
        path for path in distinct if not any(other != path and _inside(path, other) for other in distinct)
    ]


def program_binds(choice: RuntimeChoice) -> list[tuple[str, str]]:
    """Read-only binds (source, destination) that put the chosen runtime's program into a bwrap box."""
    if choice.runtime == runtimes.BUILTIN:
        binds = [(root, root) for root in interpreter_roots(choice.python)]
        return [*binds, (choice.package, BWRAP_PACKAGE)]
    return [(choice.executable, BWRAP_PICOCLAW)]


def runtime_knobs(environ: Mapping[str, str]) -> dict[str, str]:
    """The `CSGCLAW_RUNTIME_*` variables of the server's environment, copied into built-in boxes (§1.3)."""
    return {key: value for key, value in environ.items() if key.startswith(RUNTIME_KNOB_PREFIX)}


def bwrap_runtime_env(choice: RuntimeChoice, environ: Mapping[str, str]) -> dict[str, str]:
    """The `--setenv` pairs a bwrap box adds for the built-in runtime; none of them is a secret."""
    if choice.runtime != runtimes.BUILTIN:
        return {}
    return {
        "PYTHONPATH": BWRAP_PYTHON_PATH,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        **runtime_knobs(environ),
    }


def host_runtime_env(choice: RuntimeChoice, environ: Mapping[str, str]) -> dict[str, str]:
    """What an unisolated built-in runtime adds to the box environment."""
    if choice.runtime != runtimes.BUILTIN:
        return {}
    return {
        "PYTHONPATH": str(Path(choice.package).parent),
        "PYTHONDONTWRITEBYTECODE": "1",
        **runtime_knobs(environ),
    }


def quote_for_shell(path: str) -> str:
    """A path in double quotes for `sh -c`, as sandbox.md §9.5 quotes the PicoClaw executable."""
    return '"' + re.sub(r'([\\"$`])', r"\\\1", path) + '"'


def supervised_runtime_script(*, python: str, picoclaw_home: str, backoff_scale: float) -> str:
    """`sh -c` text that runs the built-in runtime (§2.3) and restarts it after a crash, with backoff.

    The runtime's output and the restart notes share this run's gateway log; the status file of a crashed
    run is removed, so the agent shows "not connected" instead of a stale `connected: true`.
    """
    log = f"{picoclaw_home}/.picoclaw/gateway.log"
    delays = " ".join(f"{delay * backoff_scale:g}" for delay in RESTART_DELAYS)
    return (
        f"mv -f {log} {log}.1 2>/dev/null; "
        "{ n=0; while :; do started=$(date +%s); "
        f"{python} -m {PACKAGE_NAME} gateway -d; code=$?; "
        "case $code in 0|2) exit $code;; esac; "
        f"rm -f {picoclaw_home}/.picoclaw/{STATUS_FILE_NAME}; "
        f"[ $(($(date +%s) - started)) -ge {RESTART_RESET_AFTER} ] && n=0; "
        f"set -- {delays}; shift $((n < $# - 1 ? n : $# - 1)); n=$((n + 1)); "
        'echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) WARN  [supervisor] runtime exited with code $code; '
        'restarting in $1 s"; sleep $1; '
        f"done; }} 1>{log} 2>&1"
    )


def backoff_scale(environ: Mapping[str, str]) -> float:
    """The server's `CSGCLAW_RUNTIME_BACKOFF_SCALE` (tests shorten every delay with it), else 1."""
    try:
        scale = float(environ.get(BACKOFF_SCALE_KNOB, "1"))
    except ValueError:
        return 1.0
    return scale if 0 < scale < float("inf") else 1.0


def bwrap_gateway_command(choice: RuntimeChoice, environ: Mapping[str, str]) -> list[str]:
    if choice.runtime == runtimes.BUILTIN:
        script = supervised_runtime_script(
            python=shlex.quote(choice.python), picoclaw_home="~", backoff_scale=backoff_scale(environ)
        )
        return ["/bin/sh", "-c", script]
    return ["/bin/sh", "-c", f"{BWRAP_PICOCLAW} gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null"]


def host_gateway_command(choice: RuntimeChoice, environ: Mapping[str, str]) -> list[str]:
    if choice.runtime == runtimes.BUILTIN:
        script = supervised_runtime_script(
            python=quote_for_shell(choice.python),
            picoclaw_home='"$HOME"',
            backoff_scale=backoff_scale(environ),
        )
        return ["/bin/sh", "-c", script]
    return [
        "/bin/sh",
        "-c",
        f'{quote_for_shell(choice.executable)} gateway -d 1>"$HOME/.picoclaw/gateway.log" 2>/dev/null',
    ]


def choice_from_record(record: Mapping[str, Any]) -> RuntimeChoice:
    """The runtime a state record was spawned with; records older than the built-in runtime are PicoClaw."""
    if record.get("runtime") == runtimes.BUILTIN:
        return RuntimeChoice(
            runtime=runtimes.BUILTIN,
            fallback=bool(record.get("fallback")),
            python=record["python"],
            package=record["package"],
        )
    return RuntimeChoice(runtime=runtimes.PICOCLAW, executable=record.get("executable", ""))


def record_fields(choice: RuntimeChoice) -> dict[str, Any]:
    """The keys `local-box.json` keeps about the runtime (§2.2)."""
    return {
        "runtime": choice.runtime,
        "fallback": choice.fallback,
        "python": choice.python,
        "package": choice.package,
        "executable": choice.executable,
    }


def read_status_file(agent_home: Path, path: Path) -> dict[str, Any] | None:
    """The runtime's status file, or None when it is missing or not a plain JSON object.

    The box writes its home, so a link there (the file or any directory above it) must never make the
    server read another file (security S5).
    """
    data = agent_home_file_read(agent_home, path, max_bytes=STATUS_FILE_MAX_BYTES)
    try:
        status = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def not_connected_detail(
    agent_home: Path, status_path: Path, *, spawned_at: float | None, now: float | None = None
) -> str:
    """Part 3 of §2.4: `runtime not connected: …` once the runtime has been without a stream long enough."""
    now = time.time() if now is None else now
    threshold = RUNTIME_NOT_CONNECTED_AFTER
    status = read_status_file(agent_home, status_path)
    if status is None:
        if spawned_at is not None and now - spawned_at >= threshold:
            return "runtime not connected: starting"
        return ""
    if status.get("connected") is not False:
        return ""
    since = parse_timestamp(status.get("since"))
    since_seconds = since.timestamp() if since is not None else spawned_at
    if since_seconds is None or now - since_seconds < threshold:
        return ""
    error = status.get("last_error")
    reason = " ".join(error.split())[:STATUS_ERROR_MAX_CHARS] if isinstance(error, str) else ""
    return f"runtime not connected: {reason or 'starting'}"
