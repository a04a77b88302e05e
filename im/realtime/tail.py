"""The shared tail of the event log: one database read per wake-up serves every stream of an event loop.

Without it, each stream woken by a commit ran its own query, so one message to N open streams cost N
reads, and N idle streams polled N times per poll interval. A `LogTail` keeps the most recent rows of every
log stream in memory; a woken stream asks it to `catch_up` (concurrent requests share one read) and takes
its rows from the window, filtered by its own selection. A stream whose cursor is older than the window
(a replay after a reconnect, a reader that fell behind) reads its own rows from the database as before,
until it reaches the window. Either way it gets exactly the rows `event_list_after` would return.
"""

from __future__ import annotations

import asyncio
import weakref
from bisect import bisect_right
from dataclasses import dataclass
from operator import attrgetter

from core.db.threads import LOG_TAIL_READ, STREAM_READ
from im.realtime.broker import broker
from im.realtime.eventlog import (
    EventSelection,
    LoggedEvent,
    LogRow,
    event_batch_length,
    event_list_after,
    event_rows_newest_after,
)

# The window only has to cover what live streams have not sent yet: the rows of the last few wake-ups, or
# a burst a slow reader is working through. Streams further behind read the database, which is always
# correct, so the bounds trade memory for fewer such reads. Characters of stored JSON bound the memory
# (a few times this many bytes as Python objects) when messages are large.
WINDOW_ROWS = 1024
WINDOW_CHARS = 4 * 1024 * 1024
# One batch of one stream: a stream holds its batch until its client has taken it (im.realtime.sse), so
# huge rows come a few at a time, not `limit` at once (security.md S7.3). A single row always fits.
BATCH_CHARS = 1024 * 1024


@dataclass(frozen=True)
class Batch:
    """One read of a stream: its rows, how far the log was considered, and whether to read again at once."""

    rows: list[LoggedEvent]
    # Every row with a seq up to here was considered: the stream's next read starts after it.
    cursor: int
    # The batch was full: more selected rows may already be waiting.
    full: bool


class LogTail:
    """The newest log rows of all streams: every row with a seq in (`low`, `high`] is in the window.

    Only coroutines of one event loop use a tail, so its state needs no lock.
    """

    def __init__(self, *, max_rows: int = WINDOW_ROWS, max_chars: int = WINDOW_CHARS) -> None:
        self._max_rows = max_rows
        self._max_chars = max_chars
        self._rows: list[LogRow] = []
        self._chars = 0
        # None until the first refresh.
        self._low: int | None = None
        self._high: int | None = None
        # Refresh tickets: a refresh serves every request issued before it started.
        self._requested = 0
        self._served = 0
        # The broker's ring count when the last completed refresh started.
        self._served_rings = 0
        self._refreshing: asyncio.Task[None] | None = None
        self._last_refresh_started: float | None = None

    @property
    def low(self) -> int | None:
        return self._low

    @property
    def high(self) -> int | None:
        return self._high

    async def catch_up(self, *, rings: int | None = None) -> None:
        """Return once the window holds every row committed before this call.

        Without `rings`, that takes a refresh that started after this call: concurrent callers share one,
        and a call made while a refresh runs starts one more after it (shared by every call made
        meanwhile), because the running one may have read before their commit. A stream woken by its
        doorbell passes `rings`, the broker's ring count read after clearing the doorbell: a refresh that
        started once that many rings had happened has seen the commit behind every one of them, even if it
        started before this call. So all the streams one commit wakes share one read, however spread out
        their wake-ups. A failed read fails every call that waited for it.
        """
        self._requested += 1
        ticket = self._requested
        while self._served < ticket and (rings is None or self._served_rings < rings):
            if self._refreshing is None:
                self._refreshing = asyncio.ensure_future(self._refresh())
            # Shielded: a stream that goes away does not cancel the read the others wait for.
            await asyncio.shield(self._refreshing)

    async def poll(self, *, since: float) -> None:
        """Catch up unless a refresh started at or after `since` (loop time): the moment the calling
        stream went to sleep, so it sees every row committed before that, however it was announced.

        This is the safety net for a lost doorbell (a write in another process without Redis): however
        many streams poll, a process reads about once per poll interval. No doorbell may have announced
        rows a poll finds, so it rings the local ones: every stream then sends them at once.
        """
        started = self._last_refresh_started
        if started is not None and started >= since:
            return
        high = self._high
        await self.catch_up()
        if self._high != high:
            broker.ring_local()

    async def batch_after(self, selection: EventSelection, *, cursor: int, limit: int) -> Batch:
        """Up to `limit` rows of `selection` after `cursor`: from the window, or from the database when
        the cursor is older than the window. Call `catch_up` first: the window is only as new as it."""
        in_window = self._batch_in_window(selection, cursor=cursor, limit=limit)
        if in_window is not None:
            return in_window
        # Every row up to `high` committed before this read starts (commit order is seq order), so a short
        # read has seen all of them, and the stream can move on to the window.
        considered = cursor if self._high is None else max(cursor, self._high)
        rows, cut = await STREAM_READ.run(_rows_within_budget, selection, cursor=cursor, limit=limit)
        if rows and (cut or len(rows) == limit):
            return Batch(rows, rows[-1].seq, full=True)
        return Batch(rows, max(considered, rows[-1].seq) if rows else considered, full=False)

    def _batch_in_window(self, selection: EventSelection, *, cursor: int, limit: int) -> Batch | None:
        if self._low is None or self._high is None or cursor < self._low:
            return None
        picked: list[LoggedEvent] = []
        chars = 0
        start = bisect_right(self._rows, cursor, key=attrgetter("seq"))
        for row in self._rows[start:]:
            event = selection.pick(row)
            if event is None:
                continue
            picked.append(event)
            chars += row.size
            if len(picked) == limit or chars >= BATCH_CHARS:
                return Batch(picked, event.seq, full=True)
        return Batch(picked, max(cursor, self._high), full=False)

    async def _refresh(self) -> None:
        serving = self._requested
        rings = broker.rings
        started = asyncio.get_running_loop().time()
        after = self._high or 0
        try:
            rows = await LOG_TAIL_READ.run(event_rows_newest_after, after, limit=self._max_rows)
        finally:
            self._refreshing = None
        self._extend(rows, after=after, complete=len(rows) < self._max_rows)
        self._served = serving
        self._served_rings = rings
        self._last_refresh_started = started

    def _extend(self, rows: list[LogRow], *, after: int, complete: bool) -> None:
        """Append the rows read after `after`; `complete` when they are all of them, else only the newest."""
        if self._low is None:
            self._low = after
        if not complete:
            # Rows between the old window and these were never read: the window restarts at them.
            self._rows, self._chars = [], 0
            self._low = rows[0].seq - 1
        self._rows.extend(rows)
        self._chars += sum(row.size for row in rows)
        self._high = rows[-1].seq if rows else after
        self._trim()

    def _trim(self) -> None:
        dropped = 0
        chars = self._chars
        while dropped < len(self._rows) and (
            len(self._rows) - dropped > self._max_rows or chars > self._max_chars
        ):
            chars -= self._rows[dropped].size
            dropped += 1
        if dropped:
            self._low = self._rows[dropped - 1].seq
            del self._rows[:dropped]
            self._chars = chars


def _rows_within_budget(
    selection: EventSelection, *, cursor: int, limit: int
) -> tuple[list[LoggedEvent], bool]:
    """The next selected rows after `cursor`, at most `limit` and about BATCH_CHARS, and whether the
    budget cut them short (then more rows are waiting)."""
    count, cut = event_batch_length(selection, cursor=cursor, limit=limit, max_chars=BATCH_CHARS)
    # None yet: rows committed since are read as before, by count.
    return event_list_after(selection, cursor=cursor, limit=count or limit), cut


# Only a refresh in progress refers to its loop, so a loop that has ended takes its tail with it.
_tails: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LogTail] = weakref.WeakKeyDictionary()


def log_tail() -> LogTail:
    """The tail shared by the streams of the running event loop (Daphne runs them all on one)."""
    loop = asyncio.get_running_loop()
    tail = _tails.get(loop)
    if tail is None:
        tail = _tails[loop] = LogTail(max_rows=WINDOW_ROWS, max_chars=WINDOW_CHARS)
    return tail
