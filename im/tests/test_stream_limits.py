"""Stream limits in-process (security.md S7): the per-process cap, batches bounded by size, and a stream
that gives up on a client that stopped reading."""

from __future__ import annotations

import asyncio
import gc

import pytest
from asgiref.sync import sync_to_async

from core.flow import current_connection
from core.sse import CONNECTED
from im.realtime import sse
from im.realtime import tail as tail_module
from im.realtime.eventlog import EventSelection, event_newest_seq
from im.realtime.slots import StreamSlots, stream_slots
from im.streams import IM_FEED
from im.tests.test_tail import post_messages

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

BIG = "x" * (400 * 1024)


def test_slots_refuse_past_the_limit_and_come_back_once_released_twice_or_not() -> None:
    slots = StreamSlots()
    first, second = slots.take(2), slots.take(2)

    assert slots.take(2) is None
    first()
    first()
    assert slots.open == 1
    assert slots.take(2) is not None
    assert second is not None


async def test_a_replay_of_big_rows_comes_in_batches_of_about_a_mebibyte() -> None:
    start = await sync_to_async(event_newest_seq)()
    await sync_to_async(post_messages)(12, content=BIG)
    tail = tail_module.LogTail(max_rows=2)
    await tail.catch_up()

    batch = await tail.batch_after(EventSelection(), cursor=start, limit=100)

    # Each message.created row stores its text about three times (IM, bot and participant frames).
    assert 1 <= len(batch.rows) <= 2
    assert batch.full
    assert batch.cursor == batch.rows[-1].seq


class StalledConnection:
    def __init__(self) -> None:
        self.aborted = False

    def unsent_bytes(self) -> int:
        return sse.MAX_UNSENT_BYTES + 1

    def abort(self) -> None:
        self.aborted = True


async def test_a_stream_whose_client_takes_nothing_is_aborted_and_frees_its_slot(monkeypatch, settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    monkeypatch.setattr(sse, "STALLED_SECONDS", 0.2)
    start = await sync_to_async(event_newest_seq)()
    await sync_to_async(post_messages)(3)
    connection = StalledConnection()
    token = current_connection.set(connection)
    try:
        frames = sse.event_stream(IM_FEED, requested=(str(start), None), on_close=lambda: None)
        sent = [frame async for frame in frames]
    finally:
        current_connection.reset(token)

    # ": connected", then nothing: the first frame already found the client too far behind.
    assert sent == [CONNECTED]
    assert connection.aborted


async def test_a_stream_response_that_never_starts_gives_its_slot_back(rf) -> None:
    before = stream_slots.open
    response = sse.event_stream_response(rf.get("/api/v1/im/events"), IM_FEED)
    assert stream_slots.open == before + 1

    del response
    gc.collect()
    await asyncio.sleep(0)

    assert stream_slots.open == before
