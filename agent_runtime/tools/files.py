"""File tools confined to the workspace and `W/projects` (builtin-runtime.md §5.1, §5.2)."""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import tempfile
from typing import Any

from agent_runtime.contracts import Settings

MAX_WRITE_BYTES = 4 * 1024 * 1024
MAX_DIFF_CHARS = 2000
MAX_DIR_ENTRIES = 1000
# A NUL byte in the first 512 bytes marks a binary file (PicoClaw `isBinaryData`).
BINARY_SNIFF_BYTES = 512


class AccessDenied(Exception):
    """A path outside the allowed roots, or a symbolic link where a write would land."""


def allowed_roots(settings: Settings) -> tuple[str, ...]:
    workspace = os.path.realpath(settings.workspace)
    projects = os.path.realpath(settings.workspace / "projects")
    return (workspace, projects)


def confine(settings: Settings, path: str) -> str:
    """The real path of `path` (`~` = HOME, relative = under W) when it lies under an allowed root."""
    raw = path.strip()
    if raw == "~" or raw.startswith("~/"):
        raw = str(settings.home) + raw[1:]
    if not os.path.isabs(raw):
        raw = os.path.join(settings.workspace, raw)
    real = os.path.realpath(os.path.normpath(raw))
    for root in allowed_roots(settings):
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return real
    raise AccessDenied(f'access denied: "{path}" is outside the workspace')


def write_target(settings: Settings, path: str) -> str:
    """Where a write of `path` lands: its real parent plus the final component, never a symbolic link."""
    confine(settings, path)
    raw = path.strip()
    if raw == "~" or raw.startswith("~/"):
        raw = str(settings.home) + raw[1:]
    if not os.path.isabs(raw):
        raw = os.path.join(settings.workspace, raw)
    normal = os.path.normpath(raw)
    parent = confine(settings, os.path.dirname(normal))
    target = os.path.join(parent, os.path.basename(normal))
    if os.path.islink(target):
        raise AccessDenied(f'access denied: "{path}" is a symbolic link')
    return target


def _read_nofollow(target: str, path: str) -> bytes | None:
    """The current bytes of `target`, None when missing; a symbolic link swapped in is refused."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AccessDenied(f'access denied: "{path}" is a symbolic link') from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _replace(target: str, data: bytes) -> None:
    """Write `data` to a temp file beside `target`, then rename it over `target` (never through a link)."""
    parent = os.path.dirname(target)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


async def read_file(settings: Settings, args: dict[str, Any]) -> str:
    path = args["path"]
    real = confine(settings, path)
    offset = args.get("offset", 0)
    length = min(args.get("length", settings.max_read_file_size), settings.max_read_file_size)
    if os.path.isdir(real):
        return f"Error: path is a directory: {path}. Use list_dir to see its contents"
    try:
        with open(real, "rb") as handle:
            total = os.fstat(handle.fileno()).st_size
            handle.seek(offset)
            probe = handle.read(length + 1)
    except FileNotFoundError:
        return f"Error: file not found: {path}"
    has_more = len(probe) > length
    data = probe[:length]
    if not data:
        return "[END OF FILE - no content at this offset]"
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "Error: file appears to be binary"
    end = offset + len(data)
    header = f"[file: {os.path.basename(real)} | total: {total} bytes | read: bytes {offset}-{end - 1}]"
    if has_more:
        header += (
            f"\n[TRUNCATED - file has more content. Call read_file again with offset={end} to continue.]"
        )
    else:
        header += "\n[END OF FILE - no further content.]"
    return header + "\n\n" + data.decode("utf-8", errors="replace")


async def write_file(settings: Settings, args: dict[str, Any]) -> str:
    path, content = args["path"], args["content"]
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        return f"Error: content is larger than {MAX_WRITE_BYTES} bytes"
    target = write_target(settings, path)
    if os.path.isdir(target):
        return f"Error: cannot write: {path} is a directory. Use list_dir to see its contents"
    if _read_nofollow(target, path) is not None and not args.get("overwrite", False):
        return f"Error: file: {path} already exists. Set overwrite=true to replace."
    _replace(target, data)
    return f"File written: {path}"


async def append_file(settings: Settings, args: dict[str, Any]) -> str:
    path = args["path"]
    target = write_target(settings, path)
    if os.path.isdir(target):
        return f"Error: cannot write: {path} is a directory. Use list_dir to see its contents"
    current = _read_nofollow(target, path) or b""
    data = current + args["content"].encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        return f"Error: file would be larger than {MAX_WRITE_BYTES} bytes"
    _replace(target, data)
    return f"Appended to {path}"


async def edit_file(settings: Settings, args: dict[str, Any]) -> str:
    path, old, new = args["path"], args["old_text"], args["new_text"]
    target = write_target(settings, path)
    current = _read_nofollow(target, path)
    if current is None:
        return f"Error: file not found: {path}"
    text = current.decode("utf-8", errors="replace")
    count = text.count(old) if old else 0
    if count == 0:
        return "Error: old_text not found in file. Make sure it matches exactly"
    if count > 1:
        return f"Error: old_text appears {count} times. Please provide more context to make it unique"
    edited = text.replace(old, new, 1)
    _replace(target, edited.encode("utf-8"))
    name = os.path.basename(target)
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), edited.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + "\n... (diff truncated)"
    return f"Edited {path}\n{diff}".rstrip("\n")


async def list_dir(settings: Settings, args: dict[str, Any]) -> str:
    path = args.get("path") or "."
    real = confine(settings, path)
    if not os.path.isdir(real):
        return f"Error: not a directory: {path}"
    entries = sorted(os.scandir(real), key=lambda entry: entry.name)
    lines = [f"{'DIR: ' if entry.is_dir() else 'FILE:'} {entry.name}" for entry in entries[:MAX_DIR_ENTRIES]]
    if len(entries) > MAX_DIR_ENTRIES:
        lines.append(f"... ({len(entries) - MAX_DIR_ENTRIES} more)")
    return "\n".join(lines) if lines else "(empty directory)"
