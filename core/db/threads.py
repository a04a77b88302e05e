"""Long-lived database threads that keep their connection between calls.

Why not plain `sync_to_async`: inside a request, Django's ASGI handler runs thread-sensitive calls on the
request's thread, and with the default `CONN_MAX_AGE = 0` the connection opened there is closed when the
request ends; a `thread_sensitive=False` call on a pooled thread has to close its connection itself,
because nothing else would. Either way a hot path pays for a new connection per call (for SQLite: the
WAL pragmas and Django's SQL functions; with bench/llm_proxy.py on a 2-core machine ~5 ms of ~19 ms of
server CPU per LLM call). The threads here live as long as the process and keep their connection, as a
WSGI worker thread with persistent connections does. Nothing runs on them inside a caller's transaction,
so a kept connection is idle in autocommit between calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

# A connection unused for this long is checked before it is trusted again (for PostgreSQL `SELECT 1`;
# for SQLite a no-op): the server may have dropped it meanwhile.
IDLE_CHECK_SECONDS = 60.0
_last_used = threading.local()


class KeptConnectionThreads:
    """A fixed set of named threads for database work from async code, each with a kept connection."""

    def __init__(self, name: str, *, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on one of the threads."""
        return await sync_to_async(run_keeping_connection, thread_sensitive=False, executor=self._executor)(
            fn, *args, **kwargs
        )


def run_keeping_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` on the calling (long-lived) thread, whose connection stays open afterwards."""
    _drop_stale_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        _drop_unsafe_connections()
        _last_used.at = time.monotonic()


def _drop_stale_connections() -> None:
    if time.monotonic() - getattr(_last_used, "at", 0.0) < IDLE_CHECK_SECONDS:
        return
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()


def _drop_unsafe_connections() -> None:
    """Close what Django's request-end check would close on a persistent connection, except for its age.

    A query failed (the connection may be broken), or `fn` left a transaction open or autocommit off:
    the next call gets a fresh connection rather than inheriting that state.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if (
            connection.errors_occurred
            or connection.in_atomic_block
            or connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]
        ):
            connection.close()
