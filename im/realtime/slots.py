"""The per-process cap on open event streams (security.md S7.2): a stream holds a slot until it ends."""

from __future__ import annotations

import threading
from collections.abc import Callable

TOO_MANY_STREAMS_TEXT = "too many open streams"
# Long enough for a closing stream to hand its slot back, short enough that a runtime does not idle.
RETRY_AFTER_SECONDS = 5


class StreamSlots:
    """Counts the streams of this process; `take` refuses once `limit` are open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def take(self, limit: int) -> Callable[[], None] | None:
        """A release function for a new slot, or None when `limit` streams are open. Releasing twice
        is harmless, so both the stream's end and the garbage collector may do it."""
        with self._lock:
            if self._open >= limit:
                return None
            self._open += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._open -= 1

        return release


stream_slots = StreamSlots()
