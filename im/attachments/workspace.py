"""Workspace copies of attachments for agents (threads-attachments.md §2.6).

A box can write anywhere in its workspace, so every component below it is checked as it is walked: a
symlink must resolve inside the workspace, and anything that is not a directory stops the copy. The bytes
go from the blob to a 0600 temporary file by the kernel (sendfile), then are renamed over the target.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from im.attachments.storage import DIRECTORY_MODE, blob_path

logger = logging.getLogger("csgclaw.attachments")

ATTACHMENTS_DIR = (".csgclaw", "attachments")
_SENDFILE_CHUNK = 8 * 1024 * 1024


class WorkspaceRefused(Exception):
    """A copy §2.6 refuses; the message says why (logged, never sent)."""


def _unsafe_id(value: str) -> bool:
    return not value or "/" in value or "\\" in value or value in (".", "..")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _directory_below(workspace: Path, parts: Iterable[str]) -> Path:
    """`workspace/<parts…>`, each missing component created 0700, each existing one checked."""
    root = workspace.resolve()
    current = workspace
    for part in parts:
        current = current / part
        if current.is_symlink():
            target = current.resolve()
            if not _inside(target, root) or not target.is_dir():
                raise WorkspaceRefused(f"{current} is a symlink outside the workspace")
            continue
        if not current.exists():
            with contextlib.suppress(FileExistsError):
                current.mkdir(mode=DIRECTORY_MODE)
        if current.is_symlink() or not current.is_dir():
            raise WorkspaceRefused(f"{current} is not a directory")
    return current


def _copy_blob(source: Path, directory: Path, name: str) -> None:
    descriptor, temp_name = tempfile.mkstemp(prefix=".incoming-", dir=directory)
    try:
        with open(source, "rb") as blob:
            size = os.fstat(blob.fileno()).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(descriptor, blob.fileno(), offset, min(_SENDFILE_CHUNK, size - offset))
                if sent == 0:
                    raise OSError(f"{source} ended early")
                offset += sent
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)
        descriptor = -1
        os.replace(temp_name, directory / name)
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def workspace_copy(
    attachment: dict[str, Any], *, workspace: Path | None, room_id: str, message_id: str
) -> str | None:
    """Copy one attachment (its wire object) into the workspace; its `workspace_path`, or None (logged)."""
    try:
        if workspace is None or workspace.is_symlink() or not workspace.is_dir():
            raise WorkspaceRefused(f"workspace {workspace} is missing")
        if _unsafe_id(room_id) or _unsafe_id(message_id):
            raise WorkspaceRefused(f"unsafe room or message id {room_id!r} / {message_id!r}")
        name = f"{attachment['id']}-{attachment['name']}"
        if _unsafe_id(attachment["id"]) or "/" in attachment["name"] or "\\" in attachment["name"]:
            raise WorkspaceRefused(f"unsafe attachment name {name!r}")
        parts = (*ATTACHMENTS_DIR, room_id, message_id)
        directory = _directory_below(workspace, parts)
        _copy_blob(blob_path(attachment["sha256"]), directory, name)
    except (WorkspaceRefused, OSError, KeyError, ValueError) as exc:
        logger.warning("attachment %s not copied to a workspace: %s", attachment.get("id"), exc)
        return None
    return "/".join((*parts, name))


def with_workspace_paths(
    attachments: list[dict[str, Any]], *, workspace: Path | None, room_id: str, message_id: str
) -> list[dict[str, Any]]:
    """The attachments of one delivered message, copied, with `workspace_path` where that worked."""
    delivered = []
    for attachment in attachments:
        path = workspace_copy(attachment, workspace=workspace, room_id=room_id, message_id=message_id)
        delivered.append({**attachment, "workspace_path": path} if path else dict(attachment))
    return delivered
