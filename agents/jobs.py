"""Background work of the agents app: lazily started pools of daemon threads, for jobs now or later."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

# Status checks have their own workers so that slow box creations can never starve them.
STATUS_WORKERS = 8


class DaemonPool:
    """A lazily started pool of daemon threads returning futures.

    Unlike ThreadPoolExecutor, its threads never hold up process exit: a box job cut short by a shutdown
    leaves its agent `creating`, and the next start-up bootstrap queues it again.
    """

    def __init__(self, name: str, size: Callable[[], int]) -> None:
        self._name = name
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[[], object]]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    def submit(self, fn: Callable[[], object]) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn))
        with self._guard:
            if len(self._threads) < max(1, self._size()):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def submit_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Submit `fn` once `delay` seconds have passed; a job still waiting at process exit is lost."""
        _schedule.add(time.monotonic() + delay, lambda: self.submit(fn))

    def _work(self) -> None:
        while True:
            future, fn = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                _release_connections()


def _release_connections() -> None:
    """Close the job's database connections; a failure here must not end the worker.

    Closing asks an unusable connection for its state, which raises when the database is unreachable. A
    pool's threads are counted, not replaced: a worker that died here would leave its jobs queued forever.
    """
    try:
        close_old_connections()
    except Exception:
        logger.exception("close the database connections of a background job")


class _Schedule:
    """One daemon thread that hands each delayed job to its pool when it falls due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], object]]] = []
        # Breaks ties between jobs due at the same moment, which heapq would otherwise compare.
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, at: float, hand_over: Callable[[], object]) -> None:
        with self._changed:
            heapq.heappush(self._due, (at, next(self._order), hand_over))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="csgclaw-schedule", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, hand_over = heapq.heappop(self._due)
            hand_over()


_schedule = _Schedule()

provisioning_pool = DaemonPool("csgclaw-box", lambda: settings.CSGCLAW_SANDBOX_WORKERS)
status_pool = DaemonPool("csgclaw-status", lambda: STATUS_WORKERS)
# Short database writes off the request (observed statuses, delayed intros) have a thread of their own, so
# they never queue behind a provider call that hangs; one is enough, SQLite takes one write at a time.
writes_pool = DaemonPool("csgclaw-agent-writes", lambda: 1)
