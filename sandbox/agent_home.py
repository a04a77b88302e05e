"""Files under an agent's home, which its box can write: the server never follows a link there (security S5).

Every path is walked one component at a time from the agent home with `O_NOFOLLOW` directory handles
(`openat`), so a link planted anywhere below the home is refused and cannot be swapped in between a check
and the use. The agent home itself is the server's (`$CSGCLAW_HOME/agents/<slug>`) and is trusted.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePath

from sandbox.providers.base import SandboxError, ensure_dir

AGENT_HOME_MODE = 0o700
DIRECTORY_MODE = 0o755
PRIVATE_FILE_MODE = 0o600
# The logs route reads no more than this from the end of a log, however large the box made it.
LOG_TAIL_MAX_BYTES = 1024 * 1024

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(SandboxError):
    """A link on a path below an agent home; str() is the agent's status detail."""

    def __init__(self, relative: str) -> None:
        super().__init__(f"unsafe path in agent home: {relative}")
        self.relative = relative


def agent_home_ensure(root: Path) -> Path:
    """Create the agent home `0700` (and tighten an older one): other local users must not read it."""
    root = Path(root)
    ensure_dir(root.parent)
    with suppress(FileExistsError):
        root.mkdir(mode=AGENT_HOME_MODE)
    root.chmod(AGENT_HOME_MODE)
    return root


def relative_below(root: Path, path: Path) -> PurePath:
    """`path` relative to the agent home `root`; a path outside it is a programming error."""
    return PurePath(os.path.normpath(path)).relative_to(os.path.normpath(root))


@contextmanager
def _directory(root: Path, relative: PurePath, *, create: bool) -> Iterator[int]:
    """A handle on `root/relative`, opened a component at a time without following any link.

    Missing directories are created `0755` when `create` is set, else FileNotFoundError propagates.
    """
    handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walked: list[str] = []
        for part in relative.parts:
            walked.append(part)
            child = _open_child(handle, part, create=create, walked=walked)
            os.close(handle)
            handle = child
        yield handle
    finally:
        os.close(handle)


def _open_child(parent: int, name: str, *, create: bool, walked: list[str]) -> int:
    """Open directory `name` below `parent`; a link there is UnsafePath."""
    try:
        try:
            return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        with suppress(FileExistsError):
            os.mkdir(name, DIRECTORY_MODE, dir_fd=parent)
        child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        # A link fails the open with ELOOP or (O_DIRECTORY first) ENOTDIR; a plain file there is no link and
        # stays an ordinary error.
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
            raise UnsafePath("/".join(walked)) from error
        raise
    try:
        # Whatever the umask: the box's own user (docker, boxlite) must be able to enter it.
        os.fchmod(child, DIRECTORY_MODE)
    except OSError:
        os.close(child)
        raise
    return child


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def directory_ensure(root: Path, path: Path) -> Path:
    """Create `path` and its missing parents below the agent home `root`, refusing any link on the way."""
    with _directory(root, relative_below(root, path), create=True):
        return Path(path)


def file_write(root: Path, path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace `path` below the agent home `root` atomically with `data`, never writing through a link.

    The bytes go to a fresh file (`O_EXCL | O_NOFOLLOW`) in the already-opened parent directory, which is
    then renamed over the name: a link planted at `path` is replaced, not followed.
    """
    relative = relative_below(root, path)
    partial = f".{relative.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with _directory(root, relative.parent, create=True) as directory:
        descriptor = os.open(
            partial,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=directory,
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(data)
            os.replace(partial, relative.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            os.unlink(partial, dir_fd=directory)
            raise


@contextmanager
def _regular_file(root: Path, path: Path) -> Iterator[tuple[int, int] | None]:
    """(descriptor, size) of the regular file at `path` below `root`, reached without following any link;
    None for anything else (a link to config.toml or /dev/zero, a FIFO, a missing file or directory)."""
    relative = relative_below(root, path)
    try:
        with _directory(root, relative.parent, create=False) as directory:
            # O_NONBLOCK: opening a FIFO must not wait for a writer.
            descriptor = os.open(
                relative.name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                dir_fd=directory,
            )
    except (UnsafePath, OSError):
        yield None
        return
    try:
        status = os.fstat(descriptor)
        yield (descriptor, status.st_size) if stat.S_ISREG(status.st_mode) else None
    finally:
        os.close(descriptor)


def file_read(root: Path, path: Path, *, max_bytes: int) -> bytes | None:
    """The first `max_bytes` of the regular file at `path` below `root`; None when there is no such file."""
    with _regular_file(root, path) as opened:
        if opened is None:
            return None
        descriptor, size = opened
        try:
            return _read_range(descriptor, 0, min(size, max_bytes))
        except OSError:
            return None


def log_tail(root: Path, path: Path, lines: int, *, max_bytes: int = LOG_TAIL_MAX_BYTES) -> str:
    """The last `lines` lines of the log at `path` below the agent home `root`, from its last `max_bytes`.

    Anything but a regular file reached without a link has no logs: "" comes back at once, and nothing
    else is ever read.
    """
    if lines <= 0:
        return ""
    with _regular_file(root, path) as opened:
        if opened is None:
            return ""
        descriptor, size = opened
        start = max(0, size - max_bytes)
        try:
            data = _read_range(descriptor, start, size)
        except OSError:
            return ""
    if start > 0 and b"\n" in data:
        # The window starts inside a line: that line is incomplete, so it is not one of the last lines.
        data = data[data.index(b"\n") + 1 :]
    text = data.decode("utf-8", errors="replace")
    return "".join(text.splitlines(keepends=True)[-lines:])


def _read_range(descriptor: int, start: int, end: int) -> bytes:
    """Bytes `start`..`end` of the file (fewer if it shrank meanwhile); a growing file adds nothing."""
    chunks: list[bytes] = []
    offset = start
    while offset < end:
        chunk = os.pread(descriptor, end - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
