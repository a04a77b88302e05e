"""The one way async code reaches the ORM: `POOL.run(fn, *args)` on a thread pool named at the bottom.

Which to use (core/tests/test_db_threads.py fails on `sync_to_async` or an executor anywhere else):
- `REQUEST_THREAD.run(fn, ...)` for work that belongs to the request, as if a sync view did it (a
  service that writes, the session, the CSRF check): it runs on the request's own thread, whose
  connection Django closes when the request ends. csgclaw_site/asgi.py lends each request that thread.
- a named pool's `run` (`BRIDGE_READ.run(selectors.llm_target_get, bot_id)`) for the hot reads and
  background writes of streams and the LLM bridge: threads that live as long as the process and keep
  their connection, so a call pays for no new one. A pool per kind of work, so one kind never queues
  behind another; add a pool below rather than an executor of your own.
Writers of every thread meet at the SQLite backend's process-wide writer lock (core/db/sqlite), which
hands the database to the next writer the moment the previous one commits.

Why named pools rather than plain `sync_to_async`: inside a request, Django's ASGI handler runs
thread-sensitive calls on the request's thread, and with the default `CONN_MAX_AGE = 0` the connection
opened there is closed when the request ends; a `thread_sensitive=False` call on a pooled thread has to
close its connection itself, because nothing else would. Either way a hot path pays for a new connection
per call (for SQLite: the WAL pragmas and Django's SQL functions; with bench/llm_proxy.py on a 2-core
machine ~5 ms of ~19 ms of server CPU per LLM call). The pools' threads keep their connection, as a WSGI
worker thread with persistent connections does. Nothing runs on them inside a caller's transaction, so a
kept connection is idle in autocommit between calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

# A connection unused for this long is checked before it is trusted again (for PostgreSQL `SELECT 1`;
# for SQLite a no-op): the server may have dropped it meanwhile.
IDLE_CHECK_SECONDS = 60.0
_last_used = threading.local()


class DbThreads:
    """A fixed set of named threads for database work from async code, each with a kept connection."""

    def __init__(self, name: str, *, workers: int) -> None:
        self.name = name
        self._call = sync_to_async(
            run_keeping_connection,
            thread_sensitive=False,
            executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name),
        )

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on one of the threads."""
        return await self._call(fn, *args, **kwargs)


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


def _invoke(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return fn(*args, **kwargs)


class RequestThreads:
    """Each running request's own thread for its sync work, lent to later requests once it is done.

    Django runs a request's thread-sensitive work (the request_started/request_finished receivers, sync
    views and middleware, `REQUEST_THREAD.run` calls) on one thread of the request's own: asgiref starts
    a one-thread executor per request, and when the request ends a second thread to join it. Each start
    blocks the event loop until the new thread runs: on a busy two-core machine about 1.4 ms of the
    loop per request (py-spy under bench/llm_proxy.py), /healthz included. Here a request borrows an idle
    one-thread executor and hands it back when it is done, as WSGI servers reuse their threads.

    What does not change: a running request's sync work has its thread to itself; request_finished still
    runs on that thread before the request ends, so close_old_connections() has closed the request's
    database connections (CONN_MAX_AGE = 0) before the thread serves another request; and a task that
    outlives its request cannot reach the thread any more (asgiref raises RuntimeError for its
    thread-sensitive calls once the request's context has exited).
    """

    def __init__(self, *, max_idle: int) -> None:
        # Beyond this many concurrent requests, the extra executors are shut down after their request,
        # which ends their thread as asgiref would have.
        self.max_idle = max_idle
        self._idle: list[ThreadPoolExecutor] = []
        self._call = sync_to_async(_invoke)

    @asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """While the request runs, its thread-sensitive work goes to a thread of its own."""
        # Most recently used first: its thread and its memory are the warmest.
        executor = (
            self._idle.pop()
            if self._idle
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        try:
            # Django's own ThreadSensitiveContext inside the handler finds this one and reuses it.
            async with ThreadSensitiveContext(executor=executor):
                yield
        finally:
            # The thread is idle again: Django awaits the request's last sync call, response.close() (or
            # request_finished after a disconnect), before returning. Were a cancelled call still running,
            # the next request's calls would queue behind it on this one thread, and that request's
            # request_started (close_old_connections) would close any connection it left open.
            if len(self._idle) < self.max_idle:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` on the current request's thread (outside a request: asgiref's one thread)."""
        return await self._call(fn, *args, **kwargs)


# The request threads: idle ones kept for reuse, enough for the concurrent requests of a busy desktop.
REQUEST_THREAD = RequestThreads(max_idle=32)

# The LLM bridge's model lookups and the bearer checks' agent-token reads. Primary-key lookups; a few
# threads keep one slow read (a cold page cache, a busy PostgreSQL) from queueing the next calls behind it.
BRIDGE_READ = DbThreads("bridge-db-read", workers=4)
# LLM usage rows. One writer: SQLite takes one write at a time anyway, and a row waiting for the write
# lock must never hold up a read that a client is waiting for.
BRIDGE_WRITE = DbThreads("bridge-db-write", workers=1)
# agents.credentials' token lookups on a cache miss, from the access middleware of every remote request:
# two, so one lookup held up by a slow read does not stop the next caller, apart from the bridge's reads.
CREDENTIALS = DbThreads("credentials-db", workers=2)
# Every wake-up of the process refreshes the shared log tail (im.realtime.tail) through this one thread;
# refreshes come one at a time anyway, and they never queue behind the streams' own reads.
LOG_TAIL_READ = DbThreads("log-tail-read", workers=1)
# Cursor memory writes of the bot and Feishu streams: a thread of their own, so under SQLite's one write
# lock they never queue in front of the reads that deliver frames.
CURSOR_MEMORY = DbThreads("cursor-memory", workers=1)
# A stream's own reads: its start cursor and setup (the Feishu open_id included), catch-ups behind the
# tail's window, catch-up filters. They come in bursts (every box reconnects after a restart) and a long
# replay must not hold up another stream's start: as many threads as asyncio's default executor, which
# served them before they had a pool.
STREAM_READ = DbThreads("stream-db-read", workers=min(32, (os.cpu_count() or 1) + 4))
