"""The one SSE generator behind every event stream: replay and live delivery share its loop (events.md §5.5).

A stream is described by a `Feed`: which log rows it sends (`EventSelection`), the `data` object of each
row's frame, an optional `event:` name and optional `CursorMemory`. The IM stream is the plain feed
(im/streams.py). The bot stream is a feed that selects `message.created` rows of one recipient, renders
`bot_payload` (+ `mentions` when `LoggedEvent.mentioned`), names its frames `message` and remembers its
cursor; the Feishu relay selects the `feishu` log stream for one open_id. The participant stream
(participants.md §2) also sets its own SSE id, heartbeat text, start cursor and catch-up filter.

Streams read through the event loop's `LogTail` (im/realtime/tail.py): a doorbell wakes every stream, one
shared read fetches the new rows, and each stream filters them itself; a stream behind the tail's window
reads its own rows from the database. Both give what `event_list_after` gives. The frame bytes and the
response headers are core/sse.py's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.db.threads import CURSOR_MEMORY, STREAM_READ
from core.flow import client_keeps_up, current_connection
from core.http import ONE_MIB, clean_text, error_response
from core.sse import CONNECTED, PING, sse_frame, sse_response
from im.realtime.broker import broker
from im.realtime.eventlog import (
    EventSelection,
    LoggedEvent,
    event_newest_seq,
    event_pruned_through,
    event_seq_of_message,
)
from im.realtime.slots import RETRY_AFTER_SECONDS, TOO_MANY_STREAMS_TEXT, stream_slots
from im.realtime.tail import log_tail

logger = logging.getLogger("csgclaw.streams")

RESET_EVENT = "reset"
LAST_EVENT_ID_HEADER = "Last-Event-ID"
LAST_EVENT_ID_PARAM = "last_event_id"
MESSAGE_ID_PREFIX = "msg-"

# Slow readers (security.md S7.1): a stream writes its next frame only while its client has at most this
# much unread; a client that takes nothing for STALLED_SECONDS meanwhile is not reading, and its stream is
# closed (it resumes with Last-Event-ID and loses nothing). Catch-ups thus go at the client's pace.
MAX_UNSENT_BYTES = ONE_MIB
STALLED_SECONDS = 10.0
_DRAIN_POLL_SECONDS = 0.05

_SEQ_DIGITS = re.compile(r"[0-9]+")
# Seqs are BIGINTs. Python refuses to parse very long digit strings, and every value past this one is
# above the newest seq anyway (a reset), so such cursors never need their exact value.
_MAX_SEQ = 2**63 - 1
_MAX_SEQ_DIGITS = len(str(_MAX_SEQ))


class CursorMemory(Protocol):
    """Where a bot or Feishu stream resumes when its client sends no cursor (events.md §5.7).

    Both methods run on database worker threads, never two at a time for one stream.
    """

    def recall(self) -> int | None:
        """The remembered seq when it is recent enough to resume from, else None ("now")."""

    def claim(self) -> bool:
        """On the event loop, before a progress write (after frames, on heartbeats): whether to make it.
        The memory coalesces progress writes here, so a skipped one costs no trip to a database thread."""

    def remember(self, seq: int, *, force: bool) -> None:
        """Record the stream's position: `force` on connect and at the end, else after a `claim`."""


@dataclass(frozen=True)
class StartCursor:
    seq: int
    reset: bool
    # Rows with seq ≤ this are a catch-up, sent only if the feed's `catch_up_filter` keeps them.
    catch_up_through: int = 0


@dataclass(frozen=True)
class Feed:
    """What one stream reads from the log and how it writes each row as a frame.

    The optional parts default to the IM/bot wire format: the seq as SSE id, `: ping`, the start cursor of
    events.md §1.3 (`start_cursor`) and no catch-up filter. `catch_up_filter` runs on a database thread
    over the rows up to `StartCursor.catch_up_through` and returns those to send.
    """

    selection: EventSelection
    data: Callable[[LoggedEvent], dict[str, Any]]
    event_name: str = ""
    memory: CursorMemory | None = None
    frame_id: Callable[[LoggedEvent], str] | None = None
    heartbeat: bytes = PING
    start: Callable[[Feed, tuple[str | None, ...]], StartCursor] | None = None
    catch_up_filter: Callable[[list[LoggedEvent]], list[LoggedEvent]] | None = None
    # Rows whose `data` does file work (the participant stream copies attachments into a workspace): their
    # frame is rendered on a stream thread, so the event loop never waits for a disk.
    data_touches_disk: Callable[[LoggedEvent], bool] | None = None


def reset_frame(newest: int) -> bytes:
    return sse_frame(newest, {"type": RESET_EVENT, "last_event_id": newest}, event_name=RESET_EVENT)


def requested_seq(value: str | None, *, stream: str) -> int | None:
    """A client's cursor as a seq: ASCII digits, or a message id mapped through its event; else None."""
    if not value:
        return None
    if _SEQ_DIGITS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        return int(digits) if len(digits) <= _MAX_SEQ_DIGITS else _MAX_SEQ + 1
    if value.startswith(MESSAGE_ID_PREFIX):
        return event_seq_of_message(stream=stream, message_id=value)
    return None


def start_cursor(feed: Feed, requested: tuple[str | None, ...]) -> StartCursor:
    """The first usable of the requested cursors, else the remembered one, else "now" (events.md §1.3)."""
    cursor = None
    for value in requested:
        cursor = requested_seq(value, stream=feed.selection.stream)
        if cursor is not None:
            break
    if cursor is None and feed.memory is not None:
        cursor = feed.memory.recall()
    # Read after resolving, so an event committed meanwhile cannot make a fresh cursor look like the future.
    newest = event_newest_seq()
    if cursor is None:
        return StartCursor(newest, reset=False)
    if cursor < event_pruned_through() or cursor > newest:
        return StartCursor(newest, reset=True)
    return StartCursor(cursor, reset=False)


async def _remember(memory: CursorMemory, seq: int, *, force: bool) -> None:
    await CURSOR_MEMORY.run(memory.remember, seq, force=force)


class CursorWriter:
    """Writes a stream's `CursorMemory` (if it has one) off the event loop, without holding up its frames.

    Under SQLite every write waits for the one write lock; awaited after each batch, the writes of many
    bot streams would delay their next frames, and in the shared thread pool they would delay the reads.
    """

    def __init__(self, memory: CursorMemory | None) -> None:
        self._memory = memory
        self._pending: asyncio.Task[None] | None = None

    def remember_soon(self, seq: int) -> None:
        """After frames and heartbeats, in the background, when the memory claims it. While a write
        runs, calls are dropped: the next frame, heartbeat or `remember_now` records seq."""
        if self._memory is None:
            return
        if self._pending is not None:
            if not self._pending.done():
                return
            # A failed write ends the stream, as a failed read does.
            self._pending.result()
            self._pending = None
        if self._memory.claim():
            self._pending = asyncio.ensure_future(_remember(self._memory, seq, force=False))

    async def remember_now(self, seq: int) -> None:
        """On connect and at the end: forced, after any write still running, so it lands last."""
        if self._memory is None:
            return
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending
        await _remember(self._memory, seq, force=True)


async def _caught_up(feed: Feed, rows: list[LoggedEvent], *, through: int) -> list[LoggedEvent]:
    """`rows` without the catch-up rows (seq ≤ `through`) that the feed's filter drops."""
    if feed.catch_up_filter is None or not rows or rows[0].seq > through:
        return rows
    old = [row for row in rows if row.seq <= through]
    return [*await STREAM_READ.run(feed.catch_up_filter, old), *rows[len(old) :]]


async def event_stream(
    feed: Feed, *, requested: tuple[str | None, ...], on_close: Callable[[], None] | None = None
) -> AsyncIterator[bytes]:
    """Frames of `feed` after the start cursor, then live, with heartbeats, until the lifetime cap.

    `on_close` runs when the stream ends, however it ends (lifetime, client gone, error).
    """
    loop = asyncio.get_running_loop()
    heartbeat = settings.CSGCLAW_SSE_HEARTBEAT
    poll_interval = settings.CSGCLAW_SSE_POLL_INTERVAL
    batch_size = settings.CSGCLAW_SSE_BATCH
    ends_at = loop.time() + settings.CSGCLAW_SSE_MAX_LIFETIME
    tail = log_tail()
    memory = CursorWriter(feed.memory)
    connection = current_connection.get()
    # Subscribed before the first read: an event committed from here on rings this doorbell.
    doorbell = broker.subscribe()
    cursor: int | None = None
    try:
        yield CONNECTED
        last_write = loop.time()
        start = await STREAM_READ.run(feed.start or start_cursor, feed, requested)
        cursor = start.seq
        if start.reset:
            yield reset_frame(cursor)
            last_write = loop.time()
        await memory.remember_now(cursor)
        # Cleared before each refresh: a ring during it leaves the flag set, so the wait returns.
        doorbell.clear()
        # The first read must see everything committed before the start cursor was resolved.
        await tail.catch_up()
        while True:
            full = True
            while full:
                batch = await tail.batch_after(feed.selection, cursor=cursor, limit=batch_size)
                for row in await _caught_up(feed, batch.rows, through=start.catch_up_through):
                    if not await client_keeps_up(
                        connection,
                        max_unsent=MAX_UNSENT_BYTES,
                        stalled_seconds=STALLED_SECONDS,
                        poll_seconds=_DRAIN_POLL_SECONDS,
                    ):
                        logger.info("closed a stream at seq %d: its client stopped reading", cursor)
                        connection.abort()
                        return
                    frame_id = row.seq if feed.frame_id is None else feed.frame_id(row)
                    if feed.data_touches_disk is not None and feed.data_touches_disk(row):
                        data = await STREAM_READ.run(feed.data, row)
                    else:
                        data = feed.data(row)
                    yield sse_frame(frame_id, data, event_name=feed.event_name)
                    cursor = row.seq
                # Also past the rows after the last frame that the selection skipped: no second look.
                cursor = batch.cursor
                full = batch.full
                now = loop.time()
                if batch.rows:
                    last_write = now
                    memory.remember_soon(cursor)
                if now >= ends_at:
                    return
            asleep_since = now
            rung = await doorbell.wait(min(poll_interval, last_write + heartbeat - now, ends_at - now))
            now = loop.time()
            if now - last_write >= heartbeat:
                yield feed.heartbeat
                last_write = now
                memory.remember_soon(cursor)
            if now >= ends_at:
                return
            if rung:
                # Cleared as above; the ring count is read after clearing, so it covers the ring seen.
                doorbell.clear()
                await tail.catch_up(rings=broker.rings)
            else:
                # Without a ring, rows that no doorbell announced are still read within the interval.
                await tail.poll(since=asleep_since)
    finally:
        broker.unsubscribe(doorbell)
        try:
            if cursor is not None:
                await memory.remember_now(cursor)
        finally:
            if on_close is not None:
                on_close()


def event_stream_response(request: HttpRequest, feed: Feed) -> HttpResponse:
    """The 200 response of a stream whose checks have passed (events.md §1.2), or 503 when this process
    already serves CSGCLAW_SSE_MAX_STREAMS streams (security.md S7.2)."""
    release = stream_slots.take(settings.CSGCLAW_SSE_MAX_STREAMS)
    if release is None:
        refused = error_response(request, 503, TOO_MANY_STREAMS_TEXT)
        refused["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return refused
    requested = (
        request.headers.get(LAST_EVENT_ID_HEADER),
        clean_text(request.GET.get(LAST_EVENT_ID_PARAM, "")),
    )
    frames = event_stream(feed, requested=requested, on_close=release)
    # A generator that never starts (the client left before the first frame) runs no `finally`.
    weakref.finalize(frames, release)
    return sse_response(frames)
