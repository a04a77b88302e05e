"""Content-addressed blobs (threads-attachments.md §2.5, §2.9): modes, atomic writes, reuse, collection."""

from __future__ import annotations

import hashlib
import os
import stat
import time

from im.attachments import storage


def _incoming(data: bytes, *, keep_limit: int = 1 << 30, chunk: int = 7) -> storage.IncomingFile:
    incoming = storage.IncomingFile(name="a.bin", content_type=None, keep_limit=keep_limit)
    for start in range(0, len(data), chunk):
        incoming.write(data[start : start + chunk])
    return incoming


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_blob_is_stored_under_its_hash_with_private_modes(attachment_home):
    data = b"hello attachments" * 100
    incoming = _incoming(data)
    temp = incoming.temp_path
    path = storage.blob_store(incoming)
    sha = hashlib.sha256(data).hexdigest()

    assert incoming.sha256 == sha and incoming.size == len(data)
    assert path == attachment_home / "im" / "assets" / "blobs" / "sha256" / sha[:2] / sha
    assert path.read_bytes() == data
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    assert not temp.exists()
    assert incoming.head == data[: storage.HEAD_BYTES]


def test_the_same_bytes_reuse_the_existing_blob(attachment_home):
    first = storage.blob_store(_incoming(b"same"))
    inode = first.stat().st_ino
    second_upload = _incoming(b"same")
    temp = second_upload.temp_path
    second = storage.blob_store(second_upload)

    assert second == first and second.stat().st_ino == inode
    assert not temp.exists()


def test_writes_stop_past_the_keep_limit_while_the_size_still_counts():
    incoming = _incoming(b"x" * 100, keep_limit=10)
    incoming.close()

    assert incoming.size == 100
    assert incoming.temp_path.stat().st_size == 10
    incoming.discard()
    assert incoming.temp_path is None


def test_the_collector_keeps_referenced_and_pending_blobs_only():
    kept = storage.blob_store(_incoming(b"kept"))
    pending = storage.blob_store(_incoming(b"pending"))
    garbage = storage.blob_store(_incoming(b"garbage"))
    storage.release_pending([kept.name, garbage.name])

    assert storage.blobs_collect({kept.name}) == 1
    assert kept.exists() and pending.exists() and not garbage.exists()

    storage.release_pending([pending.name])
    storage.blobs_collect({kept.name})
    assert not pending.exists()


def test_a_pending_blob_is_collected_once_its_transaction_is_long_over(monkeypatch):
    blob = storage.blob_store(_incoming(b"rolled back"))
    later = time.monotonic() + storage.PENDING_SECONDS + 1
    monkeypatch.setattr(storage.time, "monotonic", lambda: later)

    storage.blobs_collect(set())
    assert not blob.exists()


def test_deleting_named_blobs_spares_pending_ones():
    released = storage.blob_store(_incoming(b"released"))
    pending = storage.blob_store(_incoming(b"still pending"))
    storage.release_pending([released.name])

    storage.blobs_delete_unless_pending([released.name, pending.name])
    assert not released.exists() and pending.exists()


def test_stale_upload_files_are_swept_at_start():
    stale = _incoming(b"left behind")
    fresh = _incoming(b"in flight")
    old = time.time() - storage.STALE_TEMP_SECONDS - 10
    os.utime(stale.temp_path, (old, old))

    storage.incoming_sweep()
    assert not stale.temp_path.exists() and fresh.temp_path.exists()
