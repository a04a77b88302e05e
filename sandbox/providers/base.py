"""The sandbox provider interface: data classes, protocols, errors and helpers shared by every provider."""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

BoxState = Literal["unknown", "created", "running", "stopped", "exited"]

# Where PicoClaw writes its gateway log inside every box (the box command redirects stdout there).
GATEWAY_LOG_GUEST_PATH = "/home/picoclaw/.picoclaw/gateway.log"


class SandboxError(Exception):
    """A sandbox operation failed; str() is the user-facing text."""


class BoxNotFound(SandboxError):
    """The box named by an id or a name does not exist."""


class SandboxUnavailable(SandboxError):
    """The sandbox runtime is missing or unreachable."""


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


@dataclass
class Mount:
    host_path: str
    guest_path: str
    read_only: bool = False


@dataclass
class BoxSpec:
    image: str
    name: str
    cmd: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    detach: bool = True
    auto_remove: bool = False
    entrypoint: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class BoxInfo:
    id: str
    name: str
    state: BoxState
    created_at: datetime | None
    # Extension: a note the agent service shows as status_detail (the local provider without isolation).
    detail: str = ""


class Box(Protocol):
    def start(self) -> None: ...

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None: ...

    def info(self) -> BoxInfo: ...

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int: ...

    def logs(self, lines: int) -> str: ...

    def close(self) -> None: ...


class SandboxRuntime(Protocol):
    def create(self, spec: BoxSpec) -> Box: ...

    def get(self, id_or_name: str) -> Box: ...

    def remove(self, id_or_name: str, *, force: bool = False) -> None: ...

    def close(self) -> None: ...


class SandboxProvider(Protocol):
    name: str

    def open(self, home_dir: Path) -> SandboxRuntime: ...


def tail_logs(box: Box, lines: int) -> str:
    """Read the last `lines` lines of the gateway log by running `tail` inside the box."""
    stdout, stderr = io.BytesIO(), io.BytesIO()
    exit_code = box.exec(["tail", "-n", str(lines), GATEWAY_LOG_GUEST_PATH], stdout=stdout, stderr=stderr)
    if exit_code != 0:
        raise SandboxError(f"tail exited with code {exit_code}")
    return stdout.getvalue().decode("utf-8", errors="replace")


class TailLogsMixin:
    """Gives a box the default `logs()`: `tail` of the gateway log through its own `exec()`."""

    def logs(self, lines: int) -> str:
        return tail_logs(self, lines)  # type: ignore[arg-type]


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; empty, zero (Go's year 1) or unparsable → None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def map_state(status: object, mapping: Mapping[str, BoxState]) -> BoxState:
    """A runtime status word (any case) mapped to a BoxState; unlisted words are `unknown`."""
    if not isinstance(status, str):
        return "unknown"
    return mapping.get(status.strip().lower(), "unknown")


def first_line(text: str) -> str:
    """The first non-empty line of a CLI's output, trimmed."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def mount_argument(mount: Mount) -> str:
    """A mount as the `-v host:guest[:ro]` value shared by the boxlite and docker command lines."""
    value = f"{mount.host_path}:{mount.guest_path}"
    return f"{value}:ro" if mount.read_only else value


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600 from the first byte (files here hold tokens)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def ensure_dir(path: Path) -> Path:
    """Create `path` and any missing parents with mode 0755 whatever the umask; existing ones are kept."""
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)
    return path
