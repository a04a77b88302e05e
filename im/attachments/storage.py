"""Content-addressed blobs of attachments (threads-attachments.md §2.5, §2.9).

A blob is `<home>/im/assets/blobs/sha256/<sha[0:2]>/<sha>`: files 0600, directories 0700. Uploads are
written to a temporary file beside the blobs (same file system, so the final rename is atomic) while
their hash is computed, chunk by chunk; a file is never held in memory as a whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from im.attachments.media import HEAD_BYTES

logger = logging.getLogger("csgclaw.attachments")

DIRECTORY_MODE = 0o700
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")
# A blob stored by a transaction that has not ended is not garbage yet, however the collector sees the
# rows; past this age its transaction has long ended (a rolled-back one never releases it).
PENDING_SECONDS = 3600
# Temporary files of uploads that ended without cleanup (a killed process) are removed at start.
STALE_TEMP_SECONDS = 24 * 3600

_pending_lock = threading.Lock()
_pending: dict[str, float] = {}


def assets_root() -> Path:
    return Path(settings.CSGCLAW_HOME) / "im" / "assets" / "blobs"


def blobs_root() -> Path:
    return assets_root() / "sha256"


def incoming_root() -> Path:
    return assets_root() / "incoming"


def blob_path(sha256: str) -> Path:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return blobs_root() / sha256[:2] / sha256


def blob_exists(sha256: str, size: int) -> bool:
    try:
        return blob_path(sha256).stat().st_size == size
    except (OSError, ValueError):
        return False


def ensure_directory(path: Path) -> Path:
    """`path` and its missing parents, created 0700 (the umask may not narrow or widen that)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)
    return path


class IncomingFile:
    """An upload being written: a 0600 temporary file, its running SHA-256 and size, and its first bytes.

    Past `keep_limit` bytes nothing more is written (the size still counts): such a file is refused
    anyway and must not fill the disk.
    """

    def __init__(self, *, name: str, content_type: str | None, keep_limit: int) -> None:
        self.name = name
        self.content_type = content_type
        self.size = 0
        self.head = b""
        self._keep_limit = keep_limit
        self._hash = hashlib.sha256()
        descriptor, temp_name = tempfile.mkstemp(prefix="upload-", dir=ensure_directory(incoming_root()))
        self.temp_path: Path | None = Path(temp_name)
        self._file = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        kept = max(0, min(len(chunk), self._keep_limit - self.size))
        if kept:
            self._file.write(chunk[:kept] if kept < len(chunk) else chunk)
            self._hash.update(chunk[:kept] if kept < len(chunk) else chunk)
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self.size += len(chunk)

    def close(self) -> None:
        self._file.close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Remove the temporary file if it was not stored."""
        if not self._file.closed:
            self._file.close()
        if self.temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.temp_path.unlink()
            self.temp_path = None


def _mark_pending(sha256: str) -> None:
    with _pending_lock:
        _pending[sha256] = time.monotonic()


def release_pending(sha256s: Iterable[str]) -> None:
    """The transactions that stored these blobs committed: their rows now speak for them."""
    with _pending_lock:
        for sha256 in sha256s:
            _pending.pop(sha256, None)


def _pending_now() -> set[str]:
    oldest = time.monotonic() - PENDING_SECONDS
    with _pending_lock:
        for sha256 in [sha for sha, since in _pending.items() if since < oldest]:
            del _pending[sha256]
        return set(_pending)


def blob_store(incoming: IncomingFile) -> Path:
    """Move a complete upload to its blob (or reuse an equal blob) and return the blob's path.

    The blob stays pending, safe from the collector, until `release_pending` or an hour has passed.
    """
    incoming.close()
    sha256 = incoming.sha256
    _mark_pending(sha256)
    target = blob_path(sha256)
    if blob_exists(sha256, incoming.size):
        incoming.discard()
        return target
    ensure_directory(target.parent)
    if incoming.temp_path is None:
        raise RuntimeError("upload already discarded")
    os.chmod(incoming.temp_path, 0o600)
    os.replace(incoming.temp_path, target)
    incoming.temp_path = None
    return target


def blobs_collect(referenced: set[str]) -> int:
    """Delete every blob whose hash is neither in `referenced` nor pending; the count deleted."""
    keep = referenced | _pending_now()
    deleted = 0
    root = blobs_root()
    if not root.is_dir():
        return 0
    for shard in root.iterdir():
        if not _SHARD.fullmatch(shard.name) or not shard.is_dir() or shard.is_symlink():
            continue
        for blob in shard.iterdir():
            if _SHA256.fullmatch(blob.name) and blob.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
                    deleted += 1
    if deleted:
        logger.info("collected %d unreferenced attachment blobs", deleted)
    return deleted


def blobs_delete_unless_pending(sha256s: Iterable[str]) -> None:
    """Delete these blobs (their last rows are gone) unless a transaction in flight just stored them."""
    pending = _pending_now()
    for sha256 in sha256s:
        if sha256 not in pending:
            with contextlib.suppress(FileNotFoundError, ValueError):
                blob_path(sha256).unlink()


def incoming_sweep() -> None:
    """Remove temporary upload files left by a process that ended mid-upload."""
    root = incoming_root()
    if not root.is_dir():
        return
    oldest = time.time() - STALE_TEMP_SECONDS
    for temp in root.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if temp.is_file() and temp.stat().st_mtime < oldest:
                temp.unlink()
