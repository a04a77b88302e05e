"""The one SSE generator behind every event stream: replay and live delivery share its loop (events.md §5.5).

A stream is described by a `Feed`: which log rows it sends (`EventSelection`), the `data` object of each
row's frame, an optional `event:` name and optional `CursorMemory`. The IM stream is the plain feed
(im/streams.py). The bot stream is a feed that selects `message.created` rows of one recipient, renders
`bot_payload` (+ `mentions` when `LoggedEvent.mentioned`), names its frames `message` and remembers its
cursor; the Feishu relay selects the `feishu` log stream for one open_id. Neither needs a change here.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, StreamingHttpResponse

from csgclaw_site.http import clean_text
from im.realtime.broker import broker
from im.realtime.eventlog import (
    EventSelection,
    LoggedEvent,
    event_list_after,
    event_newest_seq,
    event_pruned_through,
    event_seq_of_message,
)

CONNECTED = b": connected\n\n"
PING = b": ping\n\n"
RESET_EVENT = "reset"
LAST_EVENT_ID_HEADER = "Last-Event-ID"
LAST_EVENT_ID_PARAM = "last_event_id"
MESSAGE_ID_PREFIX = "msg-"

_SEQ_DIGITS = re.compile(r"[0-9]+")
# Seqs are BIGINTs. Python refuses to parse very long digit strings, and every value past this one is
# above the newest seq anyway (a reset), so such cursors never need their exact value.
_MAX_SEQ = 2**63 - 1
_MAX_SEQ_DIGITS = len(str(_MAX_SEQ))


class CursorMemory(Protocol):
    """Where a bot or Feishu stream resumes when its client sends no cursor (events.md §5.7).

    Both methods run on the stream's database worker thread.
    """

    def recall(self) -> int | None:
        """The remembered seq when it is recent enough to resume from, else None ("now")."""

    def remember(self, seq: int, *, force: bool) -> None:
        """Record the stream's position. `force` on connect and at the end; otherwise (after delivered
        frames and on heartbeats) the memory may coalesce writes."""


@dataclass(frozen=True)
class Feed:
    """What one stream reads from the log and how it writes each row as a frame."""

    selection: EventSelection
    data: Callable[[LoggedEvent], dict[str, Any]]
    event_name: str = ""
    memory: CursorMemory | None = None


@dataclass(frozen=True)
class StartCursor:
    seq: int
    reset: bool


def sse_frame(seq: int, data: dict[str, Any], *, event_name: str = "") -> bytes:
    """One frame: `id:`, optional `event:`, exactly one `data:` line of compact JSON."""
    name_line = f"event: {event_name}\n" if event_name else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {seq}\n{name_line}data: {body}\n\n".encode()


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


def _run_and_close(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Worker threads are pooled and outlive the stream: never leave a connection open in one.
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()


async def _in_db_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run database work off the event loop without pinning the request's thread-sensitive executor."""
    return await sync_to_async(_run_and_close, thread_sensitive=False)(fn, *args, **kwargs)


async def event_stream(feed: Feed, *, requested: tuple[str | None, ...]) -> AsyncIterator[bytes]:
    """Frames of `feed` after the start cursor, then live, with heartbeats, until the lifetime cap."""
    loop = asyncio.get_running_loop()
    heartbeat = settings.CSGCLAW_SSE_HEARTBEAT
    poll_interval = settings.CSGCLAW_SSE_POLL_INTERVAL
    batch_size = settings.CSGCLAW_SSE_BATCH
    ends_at = loop.time() + settings.CSGCLAW_SSE_MAX_LIFETIME
    # Subscribed before the first read: an event committed from here on rings this doorbell.
    doorbell = broker.subscribe()
    cursor: int | None = None
    try:
        yield CONNECTED
        last_write = loop.time()
        start = await _in_db_thread(start_cursor, feed, requested)
        cursor = start.seq
        if start.reset:
            yield reset_frame(cursor)
            last_write = loop.time()
        if feed.memory is not None:
            await _in_db_thread(feed.memory.remember, cursor, force=True)
        while True:
            # Cleared before reading: a ring during the read leaves the flag set, so the wait returns.
            doorbell.clear()
            rows = await _in_db_thread(event_list_after, feed.selection, cursor=cursor, limit=batch_size)
            for row in rows:
                yield sse_frame(row.seq, feed.data(row), event_name=feed.event_name)
                cursor = row.seq
            now = loop.time()
            if rows:
                last_write = now
                if feed.memory is not None:
                    await _in_db_thread(feed.memory.remember, cursor, force=False)
            if now >= ends_at:
                return
            if len(rows) == batch_size:
                continue
            await doorbell.wait(min(poll_interval, last_write + heartbeat - now, ends_at - now))
            now = loop.time()
            if now - last_write >= heartbeat:
                yield PING
                last_write = now
                if feed.memory is not None:
                    await _in_db_thread(feed.memory.remember, cursor, force=False)
            if now >= ends_at:
                return
    finally:
        broker.unsubscribe(doorbell)
        if feed.memory is not None and cursor is not None:
            await _in_db_thread(feed.memory.remember, cursor, force=True)


def event_stream_response(request: HttpRequest, feed: Feed) -> StreamingHttpResponse:
    """The 200 response of a stream whose checks have passed (events.md §1.2)."""
    requested = (
        request.headers.get(LAST_EVENT_ID_HEADER),
        clean_text(request.GET.get(LAST_EVENT_ID_PARAM, "")),
    )
    response = StreamingHttpResponse(
        event_stream(feed, requested=requested), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies to pass frames through instead of buffering them.
    response["X-Accel-Buffering"] = "no"
    return response
