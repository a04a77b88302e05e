"""The per-agent lock: one box operation (provision, start, stop, delete, rotation) per agent at a time."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

logger = logging.getLogger("csgclaw.sandbox")

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def agent_lock(agent_id: str) -> Iterator[None]:
    """One box operation (provision, start, stop, delete, rotation) per agent at a time (security.md S8).

    Threads of this process queue on a lock of their own. On PostgreSQL a session-level advisory lock also
    holds the other server processes off. It is a database lock without a transaction: a row lock would
    keep a transaction open through the slow provider call. SQLite serves one process, where the thread
    lock is the whole story (an open SQLite write transaction would stall every IM write meanwhile).
    """
    with _locks_guard:
        thread_lock = _locks.setdefault(agent_id, threading.Lock())
    with thread_lock:
        if connection.vendor != "postgresql":
            yield
            return
        key = agent_lock_key(agent_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                # The connection is gone, and PostgreSQL released its session locks with it.
                logger.warning("agent lock of %s: the connection closed before the unlock", agent_id)


def agent_lock_key(agent_id: str) -> int:
    """The advisory-lock key of an agent: 64 bits of a hash, in a namespace of their own."""
    digest = hashlib.sha256(f"csgclaw.agent:{agent_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
