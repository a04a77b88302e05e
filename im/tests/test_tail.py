"""The shared log tail (im/realtime/tail.py): one read per wake-up, and exactly the frames a per-stream
read gives (events.md §1.3, §5, §6)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from core.sse import sse_frame
from im import events, services
from im.identity import ADMIN_ID
from im.models import ChatUser, EventStream
from im.realtime import tail as tail_module
from im.realtime.broker import broker
from im.realtime.eventlog import (
    EventSelection,
    LoggedEvent,
    event_list_after,
    event_newest_seq,
    event_rows_newest_after,
)
from im.realtime.sse import Feed, event_stream
from im.realtime.tail import LogTail, log_tail
from im.tests.factories import in_own_thread, make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CONNECTED = b": connected\n\n"
PING = b": ping\n\n"
BOTS = ("u-alice", "u-bob", "u-carol")
OPEN_IDS = ("ou_alice", "ou_bob")
# Ids no row is addressed to: an unknown bot, and one too long to be an id at all.
STRANGERS = ("u-ghost", "u-" + "x" * 200)


@pytest.fixture(autouse=True)
def quiet_streams(settings):
    """Only a doorbell (or a test that shortens these) makes a stream read."""
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    settings.CSGCLAW_SSE_POLL_INTERVAL = 30


# --- feeds like the IM, bot and Feishu streams ---------------------------------------------------------


def payload_data(event: LoggedEvent) -> dict[str, Any]:
    return event.payload


def bot_data(bot_id: str) -> Callable[[LoggedEvent], dict[str, Any]]:
    def data(event: LoggedEvent) -> dict[str, Any]:
        return {**event.bot_payload, **({"mentions": [bot_id]} if event.mentioned else {})}

    return data


def im_feed() -> Feed:
    return Feed(selection=EventSelection(), data=payload_data)


def bot_feed(bot_id: str) -> Feed:
    selection = EventSelection(recipient_id=bot_id, types=(events.MESSAGE_CREATED,))
    return Feed(selection=selection, data=bot_data(bot_id), event_name="message")


def every_kind_of_feed() -> dict[str, Feed]:
    feeds = {
        "im": im_feed(),
        "im messages only": Feed(
            selection=EventSelection(types=(events.MESSAGE_CREATED,)), data=payload_data
        ),
        "im rooms only": Feed(
            selection=EventSelection(types=(events.ROOM_CREATED, events.ROOM_MEMBERS_ADDED)),
            data=payload_data,
        ),
        "feishu, all open_ids": Feed(selection=EventSelection(stream=EventStream.FEISHU), data=payload_data),
        "alice, any type": Feed(selection=EventSelection(recipient_id="u-alice"), data=payload_data),
    }
    feeds.update({f"bot {bot_id[:12]}": bot_feed(bot_id) for bot_id in BOTS + STRANGERS})
    feeds.update(
        {
            f"feishu {open_id}": Feed(
                selection=EventSelection(stream=EventStream.FEISHU, recipient_id=open_id), data=payload_data
            )
            for open_id in (*OPEN_IDS, *STRANGERS)
        }
    )
    return feeds


# --- writing a log -------------------------------------------------------------------------------------


class RandomLog:
    """Messages in direct and group rooms with random mentions, Feishu relay events, new rooms."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        for bot_id in BOTS:
            make_user(bot_id)
        self.rooms = [
            make_room(members=[ADMIN_ID, "u-alice"], is_direct=True),
            make_room(members=[ADMIN_ID, "u-bob"], is_direct=True),
            make_room(members=[ADMIN_ID, *BOTS]),
            make_room(members=["u-alice", "u-carol"]),
        ]

    def write(self, count: int) -> None:
        for number in range(count):
            roll = self.rng.random()
            if roll < 0.6:
                self._message(number)
            elif roll < 0.85:
                self._feishu_event(number)
            else:
                services.room_create(
                    creator_id=ADMIN_ID, title=f"room {number}", member_ids=[self.rng.choice(BOTS)]
                )

    def _message(self, number: int) -> None:
        room = self.rng.choice(self.rooms)
        members = list(room.memberships.values_list("user_id", flat=True))
        mentioned = self.rng.sample(BOTS, self.rng.randint(0, 2))
        content = " ".join([f"message {number}", *(f"@{bot_id.removeprefix('u-')}" for bot_id in mentioned)])
        services.message_send(room_id=room.id, sender_id=self.rng.choice(members), content=content)

    def _feishu_event(self, number: int) -> None:
        recipients = [(open_id, self.rng.random() < 0.5) for open_id in self.rng.sample(OPEN_IDS, 2)]
        with transaction.atomic():
            events.event_append(
                type=events.MESSAGE_CREATED,
                payload={
                    "room_id": "oc_chat",
                    "message": {"id": f"om_{number}", "content": f"relay {number}"},
                },
                stream=EventStream.FEISHU,
                recipients=recipients[: self.rng.randint(0, 2)],
            )


def post_messages(count: int, *, content: str = "message") -> None:
    """`count` messages from the admin to alice, in a new direct room (writing them, no other events)."""
    if not ChatUser.objects.filter(pk="u-alice").exists():
        make_user("u-alice")
    room = make_room(members=[ADMIN_ID, "u-alice"], is_direct=True)
    for number in range(count):
        services.message_send(room_id=room.id, sender_id=ADMIN_ID, content=f"{content} {number}")


def expected_frames(feed: Feed, *, after: int) -> list[bytes]:
    """The frames a stream that reads its own rows from the database sends after `after`."""
    rows = event_list_after(feed.selection, cursor=after, limit=1_000_000)
    return [sse_frame(row.seq, feed.data(row), event_name=feed.event_name) for row in rows]


# --- reading streams -----------------------------------------------------------------------------------


class Reader:
    """Drains one `event_stream` in a task, keeping its frames (pings and `: connected` left out)."""

    def __init__(self, feed: Feed, *, requested: tuple[str | None, ...] = (None, None)) -> None:
        self.stream = event_stream(feed, requested=requested)
        self.frames: list[bytes] = []
        self.changed = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> Reader:
        assert await asyncio.wait_for(anext(self.stream), 5) == CONNECTED
        self.task = asyncio.create_task(self._drain())
        return self

    async def _drain(self) -> None:
        async for chunk in self.stream:
            if chunk != PING:
                self.frames.append(chunk)
                self.changed.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[bytes]:
        async with asyncio.timeout(timeout):
            while len(self.frames) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.frames

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.stream.aclose()


@pytest.fixture
async def readers() -> AsyncIterator[Callable[..., Any]]:
    opened: list[Reader] = []

    async def open_reader(feed: Feed, **kwargs: Any) -> Reader:
        reader = await Reader(feed, **kwargs).start()
        opened.append(reader)
        return reader

    yield open_reader
    for reader in opened:
        await reader.close()


async def warmed_up(streams: list[Reader]) -> None:
    """Send alice one message and wait until every stream has sent it: all have read and are idle.

    The streams must have been opened at an explicit cursor, so none can start after the message.
    """
    counts = [len(stream.frames) for stream in streams]
    await sync_to_async(post_messages)(1)
    for stream, count in zip(streams, counts, strict=True):
        await stream.wait_for(count + 1)


class ReadCounter:
    """Counts the tail's shared reads and the per-stream database reads of this test's streams."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shared = 0
        self.per_stream = 0
        shared_read = tail_module.event_rows_newest_after
        own_read = tail_module.event_list_after

        def counted_shared(*args: Any, **kwargs: Any) -> Any:
            self.shared += 1
            return shared_read(*args, **kwargs)

        def counted_own(*args: Any, **kwargs: Any) -> Any:
            self.per_stream += 1
            return own_read(*args, **kwargs)

        monkeypatch.setattr(tail_module, "event_rows_newest_after", counted_shared)
        monkeypatch.setattr(tail_module, "event_list_after", counted_own)

    def reset(self) -> None:
        self.shared = self.per_stream = 0


@pytest.fixture
def reads(monkeypatch) -> ReadCounter:
    return ReadCounter(monkeypatch)


# --- the tail gives what a per-stream read gives ---------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_live_streams_fed_by_the_tail_send_what_database_reads_send(readers, reads, seed):
    log = await sync_to_async(RandomLog)(seed)
    start = await sync_to_async(event_newest_seq)()
    feeds = every_kind_of_feed()
    live = {name: await readers(feed, requested=(str(start), None)) for name, feed in feeds.items()}

    await sync_to_async(log.write)(60)

    for name, feed in feeds.items():
        expected = await sync_to_async(expected_frames)(feed, after=start)
        assert await live[name].wait_for(len(expected)) == expected, name
    assert reads.per_stream == 0
    # The mix really has what the selections tell apart.
    assert any(b'"mentions":["u-alice"]' in frame for frame in live["bot u-alice"].frames)
    assert any(b'"mentions"' not in frame for frame in live["bot u-alice"].frames)
    assert live["feishu ou_alice"].frames and live["im rooms only"].frames
    assert not live["bot u-ghost"].frames


@pytest.mark.parametrize("seed", [4, 5])
async def test_batches_from_the_window_equal_database_batches_from_every_cursor(seed, monkeypatch):
    log = await sync_to_async(RandomLog)(seed)
    tail = LogTail()
    await tail.catch_up()
    start = tail.high
    await sync_to_async(log.write)(40)
    await tail.catch_up()

    def no_database_read(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cursor inside the window read the database")

    monkeypatch.setattr(tail_module, "event_list_after", no_database_read)
    for feed in every_kind_of_feed().values():
        for cursor in range(start, tail.high + 1, 3):
            for limit in (1, 2, 5, 100):
                in_window = await tail.batch_after(feed.selection, cursor=cursor, limit=limit)
                from_database = await sync_to_async(event_list_after)(
                    feed.selection, cursor=cursor, limit=limit
                )
                assert in_window.rows == from_database, (feed.selection, cursor, limit)
                assert in_window.full == (len(from_database) == limit)
                if not in_window.full:
                    assert in_window.cursor == tail.high


async def test_a_replay_through_a_small_window_reads_the_database_then_the_window(
    readers, reads, monkeypatch
):
    monkeypatch.setattr(tail_module, "WINDOW_ROWS", 8)
    log = await sync_to_async(RandomLog)(6)
    start = await sync_to_async(event_newest_seq)()
    await sync_to_async(log.write)(80)
    feeds = every_kind_of_feed()

    replays = {name: await readers(feed, requested=(str(start), None)) for name, feed in feeds.items()}
    for name, feed in feeds.items():
        expected = await sync_to_async(expected_frames)(feed, after=start)
        assert await replays[name].wait_for(len(expected)) == expected, name
    assert reads.per_stream >= len(feeds)

    # Caught up, they are fed by the window alone.
    replayed = {name: len(reader.frames) for name, reader in replays.items()}
    reads.reset()
    middle = await sync_to_async(event_newest_seq)()
    await sync_to_async(log.write)(5)
    for name, feed in feeds.items():
        expected = await sync_to_async(expected_frames)(feed, after=middle)
        frames = await replays[name].wait_for(replayed[name] + len(expected))
        assert frames[replayed[name] :] == expected, name
    assert reads.per_stream == 0


# --- one read per wake-up --------------------------------------------------------------------------------


async def test_one_commit_to_fifty_streams_costs_one_read(readers, reads):
    now = (str(await sync_to_async(event_newest_seq)()), None)
    streams = [await readers(bot_feed("u-alice") if n % 2 else im_feed(), requested=now) for n in range(50)]
    await warmed_up(streams)
    reads.reset()

    await sync_to_async(post_messages)(1)

    for stream in streams:
        assert len(await stream.wait_for(2)) == 2
    # However spread out their wake-ups, the streams one ring woke share the read that followed it.
    assert reads.shared == 1
    assert reads.per_stream == 0


class HeldRead:
    """Replaces the tail's shared read: each call is counted and waits until `release` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.release = threading.Event()
        self._started = threading.Semaphore(0)
        self._read = tail_module.event_rows_newest_after
        monkeypatch.setattr(tail_module, "event_rows_newest_after", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self._started.release()
        self.release.wait(10)
        return self._read(*args, **kwargs)

    async def started(self) -> bool:
        return await asyncio.to_thread(self._started.acquire, timeout=5)


async def test_concurrent_catch_ups_share_a_read_and_later_ones_get_exactly_one_more(monkeypatch):
    tail = LogTail()
    await tail.catch_up()
    read = HeldRead(monkeypatch)

    first_wave = [asyncio.create_task(tail.catch_up()) for _ in range(20)]
    assert await read.started()
    second_wave = [asyncio.create_task(tail.catch_up()) for _ in range(20)]
    await asyncio.sleep(0.05)
    read.release.set()
    await asyncio.wait_for(asyncio.gather(*first_wave, *second_wave), 10)

    assert read.calls == 2


async def test_a_caller_woken_by_an_earlier_ring_shares_the_running_read(monkeypatch):
    tail = LogTail()
    await tail.catch_up()
    read = HeldRead(monkeypatch)

    rings = broker.rings
    running = asyncio.create_task(tail.catch_up())
    assert await read.started()
    # Its ring came before the running read started, so that read has seen its commit.
    late = asyncio.create_task(tail.catch_up(rings=rings))
    await asyncio.sleep(0.05)
    read.release.set()
    await asyncio.wait_for(asyncio.gather(running, late), 10)

    assert read.calls == 1


async def test_a_poll_reads_only_when_no_refresh_started_since_the_stream_went_to_sleep(reads):
    tail = LogTail()
    loop = asyncio.get_running_loop()
    before_first = loop.time()
    await tail.catch_up()
    reads.reset()

    await tail.poll(since=before_first)
    assert reads.shared == 0
    await tail.poll(since=loop.time())
    assert reads.shared == 1


async def test_a_ring_during_a_refresh_is_not_missed(readers, monkeypatch):
    now = (str(await sync_to_async(event_newest_seq)()), None)
    stream = await readers(im_feed(), requested=now)
    await warmed_up([stream])
    read = tail_module.event_rows_newest_after
    first_read_done = threading.Event()
    second_commit_done = threading.Event()

    def read_then_stall(*args: Any, **kwargs: Any) -> Any:
        rows = read(*args, **kwargs)
        if not first_read_done.is_set():
            # The read has its rows; the next commit and its ring land before it returns.
            first_read_done.set()
            second_commit_done.wait(10)
        return rows

    monkeypatch.setattr(tail_module, "event_rows_newest_after", read_then_stall)
    first = in_own_thread(post_messages, 1)
    assert await asyncio.to_thread(first_read_done.wait, 5)
    second = in_own_thread(post_messages, 1)
    await asyncio.to_thread(second.join)
    second_commit_done.set()
    await asyncio.to_thread(first.join)

    # The poll interval is 30 s: only the doorbell can bring the second message this soon.
    frames = await stream.wait_for(3, timeout=5)
    expected = await sync_to_async(expected_frames)(im_feed(), after=0)
    assert frames[-2:] == expected[-2:]


async def test_idle_streams_poll_about_once_per_interval_and_see_unannounced_writes(
    readers, reads, settings, monkeypatch
):
    settings.CSGCLAW_SSE_POLL_INTERVAL = 0.3
    now = (str(await sync_to_async(event_newest_seq)()), None)
    streams = [await readers(im_feed(), requested=now) for _ in range(20)]
    await warmed_up(streams)
    # As for a write in another process without Redis: nothing rings here.
    monkeypatch.setattr(broker, "ring", lambda seq=0: None)
    reads.reset()

    await asyncio.sleep(1.5)

    # Twenty streams polling on their own would read about a hundred times.
    assert 2 <= reads.shared <= 12
    assert reads.per_stream == 0
    loop = asyncio.get_running_loop()
    written_at = loop.time()
    await asyncio.to_thread(in_own_thread(post_messages, 1).join)
    for stream in streams:
        assert len(await stream.wait_for(2, timeout=3)) == 2
    # The first poll that finds the row rings every local stream, so none waits for its own poll.
    assert loop.time() - written_at < 1.5


# --- the window ------------------------------------------------------------------------------------------


async def test_a_slow_reader_behind_the_window_gets_200_events_in_order(
    readers, reads, settings, monkeypatch
):
    settings.CSGCLAW_SSE_BATCH = 16
    monkeypatch.setattr(tail_module, "WINDOW_ROWS", 32)
    start = await sync_to_async(event_newest_seq)()
    # An explicit cursor: a live start would be resolved after `anext` returns, racing the first writes.
    fast = await readers(im_feed(), requested=(str(start), None))
    slow = event_stream(im_feed(), requested=(str(start), None))
    try:
        assert await anext(slow) == CONNECTED
        # The fast reader keeps the window moving while the slow one has not read at all.
        await sync_to_async(post_messages)(50)
        await fast.wait_for(50)
        writer = asyncio.ensure_future(sync_to_async(post_messages)(150))
        received = []
        while len(received) < 200:
            chunk = await asyncio.wait_for(anext(slow), 10)
            if chunk != PING:
                received.append(chunk)
            await asyncio.sleep(0.002)
        await writer
    finally:
        await slow.aclose()

    expected = await sync_to_async(expected_frames)(im_feed(), after=start)
    assert len(expected) == 200
    assert received == expected
    assert await fast.wait_for(200) == expected
    assert reads.per_stream >= 1


async def test_the_window_keeps_the_newest_rows_within_its_bounds(reads):
    await sync_to_async(post_messages)(12)
    newest = await sync_to_async(event_newest_seq)()
    rows_bound = LogTail(max_rows=5)
    await rows_bound.catch_up()

    assert (rows_bound.low, rows_bound.high) == (newest - 5, newest)
    in_window = await rows_bound.batch_after(EventSelection(), cursor=newest - 5, limit=100)
    assert [row.seq for row in in_window.rows] == list(range(newest - 4, newest + 1))
    assert reads.per_stream == 0
    behind = await rows_bound.batch_after(EventSelection(), cursor=newest - 6, limit=100)
    assert [row.seq for row in behind.rows] == list(range(newest - 5, newest + 1))
    assert reads.per_stream == 1

    sizes = [row.size for row in await sync_to_async(event_rows_newest_after)(0, limit=12)]
    max_chars = sum(sizes[-3:])
    chars_bound = LogTail(max_chars=max_chars + sizes[-4] - 1)
    await chars_bound.catch_up()
    assert (chars_bound.low, chars_bound.high) == (newest - 3, newest)


async def test_a_window_that_fell_far_behind_restarts_at_the_newest_rows(reads):
    tail = LogTail(max_rows=4)
    await tail.catch_up()
    start = tail.high
    await sync_to_async(post_messages)(10)
    reads.reset()

    await tail.catch_up()

    newest = await sync_to_async(event_newest_seq)()
    assert (tail.low, tail.high) == (newest - 4, newest)
    assert reads.shared == 1
    # A stream still at the old high is behind the window: it reads its rows itself, then joins.
    batch = await tail.batch_after(EventSelection(), cursor=start, limit=100)
    assert [row.seq for row in batch.rows] == list(range(newest - 9, newest + 1))
    assert (batch.cursor, reads.per_stream) == (newest, 1)


async def test_each_event_loop_has_its_own_tail():
    here = log_tail()

    def on_another_loop() -> LogTail:
        async def tail_there() -> LogTail:
            return log_tail()

        return asyncio.run(tail_there())

    assert await asyncio.to_thread(on_another_loop) is not here
    assert log_tail() is here


# --- cursor memory stays right when the cursor moves past skipped rows -------------------------------------


class RecordingMemory:
    def __init__(self, remembered: int | None = None) -> None:
        self.remembered = remembered
        self.seqs: list[int] = []

    def recall(self) -> int | None:
        return self.remembered

    def claim(self) -> bool:
        return True

    def remember(self, seq: int, *, force: bool) -> None:
        self.seqs.append(seq)


async def stream_until_its_lifetime_ends(feed: Feed, requested: tuple[str | None, ...]) -> list[bytes]:
    frames = event_stream(feed, requested=requested)
    return [chunk async for chunk in frames if chunk not in (CONNECTED, PING)]


def frame_seq(frame: bytes) -> int:
    return int(frame.split(b"\n", 1)[0].removeprefix(b"id: "))


async def test_a_remembered_cursor_past_skipped_rows_resumes_like_the_last_frame(settings):
    settings.CSGCLAW_SSE_MAX_LIFETIME = 0.5
    log = await sync_to_async(RandomLog)(7)
    start = await sync_to_async(event_newest_seq)()
    await sync_to_async(log.write)(30)
    carol = bot_feed("u-carol")
    memory = RecordingMemory()
    first_frames = await stream_until_its_lifetime_ends(
        Feed(carol.selection, carol.data, carol.event_name, memory), (str(start), None)
    )

    # The stream looked at every row, so it remembers the newest one, past carol's last frame.
    newest = await sync_to_async(event_newest_seq)()
    last_frame_seq = frame_seq(first_frames[-1])
    assert memory.seqs[-1] == newest > last_frame_seq
    await sync_to_async(log.write)(30)
    from_memory = await stream_until_its_lifetime_ends(
        Feed(carol.selection, carol.data, carol.event_name, RecordingMemory(remembered=newest)), (None, None)
    )
    from_last_frame = await stream_until_its_lifetime_ends(carol, (str(last_frame_seq), None))
    assert from_memory == from_last_frame
    assert from_memory == await sync_to_async(expected_frames)(carol, after=newest)
    assert from_memory
