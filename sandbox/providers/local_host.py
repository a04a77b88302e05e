"""The local provider's host side: bubblewrap arguments, the box process environment, process groups."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.boxspec import GUEST_HOME, GUEST_PROJECTS, GUEST_WORKSPACE

BOX_PATH = "/usr/local/bin:/usr/bin:/bin"
POLL_INTERVAL = 0.05


def bwrap_arguments(
    *,
    bwrap: str,
    box_home: Path,
    workspace: str,
    projects: str,
    binds: Sequence[tuple[str, str]],
    setenv: Mapping[str, str],
) -> list[str]:
    """Everything before the command: read-only system dirs, the box's own dirs and its program.

    The box environment is not here: bwrap hands its own environment to the box, and the caller starts
    bwrap with exactly the box environment, so no token ever shows on a command line (security S9).
    `setenv` carries only values that are no secret.
    """
    arguments = [
        bwrap,
        "--unshare-all",
        "--share-net",
        *("--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"),
        *(
            "--ro-bind-try",
            "/bin",
            "/bin",
            "--ro-bind-try",
            "/lib",
            "/lib",
            "--ro-bind-try",
            "/lib64",
            "/lib64",
        ),
        *("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"),
        *("--bind", str(box_home), GUEST_HOME),
        *("--bind", workspace, GUEST_WORKSPACE),
        *("--bind", projects, GUEST_PROJECTS),
    ]
    for source, destination in binds:
        arguments += ["--ro-bind", source, destination]
    arguments += ["--chdir", GUEST_HOME]
    for key, value in setenv.items():
        arguments += ["--setenv", key, value]
    return arguments


def box_process_env(env: Mapping[str, str], *, home: str, path: str = BOX_PATH) -> dict[str, str]:
    """The whole environment of a box's process (bwrap or the gateway itself): nothing of the server's."""
    return {"PATH": path, **env, "HOME": home}


def _proc_stat(pid: str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, …), or None if gone."""
    try:
        return (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def process_alive(pid: object) -> bool:
    """Whether `pid` is a live (not zombie) process that looks like our gateway."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # PermissionError: the pid was reused by another user's process, so it is not our gateway.
        return False
    if not Path("/proc/self").exists():
        return True
    fields = _proc_stat(str(pid))
    try:
        command_line = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return fields is not None and fields[:1] != ["Z"] and b"gateway" in command_line


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in the group; zombies do not count (not every init reaps them)."""
    if not Path("/proc/self").exists():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields is not None and len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def signal_group(pgid: int, signum: int) -> None:
    # The gateway was started in its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def wait_group_gone(pgid: int, seconds: float) -> bool:
    """Wait for the whole group: the shell that leads it may die before the gateway it started."""
    deadline = time.monotonic() + seconds
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def replace_with_symlink(link: Path, target: Path) -> None:
    """Point `link` at `target`, replacing an old link or an empty mount point left by bwrap."""
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
        link.unlink()
    elif link.is_dir():
        link.rmdir()
    link.symlink_to(target, target_is_directory=True)


def remove_symlink(path: Path) -> None:
    """bwrap cannot mount onto a symlink left by an unisolated run, so drop it (it is ours)."""
    if path.is_symlink():
        path.unlink()
