"""The IM stream and the SSE generator, over ASGI without sockets (events.md §1, §2, §5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from agents import records as agent_records
from agents import services as agent_services
from im import events, services
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import Event, EventStream, Message
from im.realtime.broker import broker
from im.realtime.eventlog import EventSelection, LoggedEvent, event_newest_seq
from im.realtime.sse import Feed, event_stream
from im.tests.factories import in_own_thread, make_agent, make_room, make_user, seed_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]

IM_PATH = "/api/v1/im/events"
ALIAS_PATH = "/api/v1/events"
CONNECTED = b": connected\n\n"
PING = b": ping\n\n"

IM_EVENT_KEYS = {
    events.MESSAGE_CREATED: ["type", "room_id", "message", "sender"],
    events.ROOM_CREATED: ["type", "room_id", "room"],
    events.ROOM_MEMBERS_ADDED: ["type", "room_id", "room"],
    events.ROOM_DELETED: ["type", "room_id"],
    events.USER_CREATED: ["type", "user"],
    events.USER_DELETED: ["type", "user"],
    events.AGENT_UPDATED: ["type", "agent"],
}


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def post_messages(count: int, *, room_id: str | None = None, content: str = "message") -> list[Event]:
    """Send `count` messages as the admin; returns their `message.created` events in order."""
    room_id = room_id or seed_room().id
    message_ids = [
        services.message_send(
            room_id=room_id, sender_id=ADMIN_ID, content=f"{content} {n}"
        ).message.message_id
        for n in range(count)
    ]
    by_message = {
        event.message_id: event
        for event in Event.objects.filter(type=events.MESSAGE_CREATED, message_id__in=message_ids)
    }
    return [by_message[message_id] for message_id in message_ids]


@pytest.fixture(autouse=True)
def long_lived_streams(settings):
    """Streams outlive a slow CI box's test; the lifetime test shortens it again."""
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30


async def open_idle(asgi_stream, path: str = IM_PATH, **kwargs: Any):
    """A stream that has resolved its start cursor: `: connected`, then the first heartbeat."""
    stream = await asgi_stream(path, **kwargs)
    assert await stream.chunk() == CONNECTED
    assert await stream.chunk() == PING
    return stream


# --- response ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [IM_PATH, ALIAS_PATH])
async def test_response_headers_and_first_bytes(asgi_stream, path):
    stream = await asgi_stream(path)

    assert stream.status == 200
    headers = stream.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    for absent in ("connection", "transfer-encoding", "content-length", "content-encoding", "etag"):
        assert absent not in headers
    assert await stream.chunk() == CONNECTED


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
async def test_other_methods_get_a_plain_405_before_any_stream(asgi_stream, method):
    before = broker.subscriber_count
    stream = await asgi_stream(IM_PATH, method=method)

    assert stream.status == 405
    assert stream.headers["content-type"] == "text/plain; charset=utf-8"
    body = b""
    while not stream.ended:
        body += await stream.chunk()
    if method != "HEAD":
        assert body == b"method not allowed\n"
    assert broker.subscriber_count == before


async def test_405_error_is_json_when_asked(async_client):
    response = await async_client.post(ALIAS_PATH, headers={"Accept": "application/json"})

    assert response.status_code == 405
    assert json.loads(response.content) == {"error": {"status": 405, "message": "method not allowed"}}


async def test_a_trailing_slash_is_not_the_stream(async_client):
    response = await async_client.get(IM_PATH + "/")

    assert response.status_code == 404
    assert response.content == b"404 page not found\n"


# --- frames ------------------------------------------------------------------------------------------


def emit_every_im_event_type() -> None:
    alice = make_agent("u-alice")
    agent_services.agent_im_identity_ensure(agent=alice)
    room = services.room_create(creator_id=ADMIN_ID, title="project", member_ids=[MANAGER_ID])
    services.room_invite(room_id=room.id, inviter_id=ADMIN_ID, user_ids=["u-alice"])
    services.message_send(room_id=room.id, sender_id=ADMIN_ID, content='@alice 你好, "quoted"\nsecond line')
    with transaction.atomic():
        agent_records.emit_agent_updated(alice)
    services.room_delete(room_id=room.id)
    services.user_delete(user_id="u-alice")


async def test_each_im_event_type_is_an_id_and_compact_data_frame(asgi_stream):
    mark = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(mark)})
    assert await stream.chunk() == CONNECTED

    await sync_to_async(emit_every_im_event_type)()
    logged = await sync_to_async(lambda: list(Event.objects.filter(seq__gt=mark).order_by("seq")))()
    frames = await stream.frames(len(logged))

    assert {event.type for event in logged} == set(IM_EVENT_KEYS)
    for frame, event in zip(frames, logged, strict=True):
        assert frame.raw == f"id: {event.seq}\ndata: {compact(event.payload)}\n\n".encode()
        assert frame.event == ""
        assert list(frame.data) == IM_EVENT_KEYS[event.type]
        assert frame.data["type"] == event.type
        assert "conversation" not in frame.data_text
    message_frame = next(frame for frame in frames if frame.data["type"] == events.MESSAGE_CREATED)
    assert '你好, \\"quoted\\"\\nsecond line' in message_frame.data_text
    assert message_frame.data["message"]["mentions"] == ["u-alice"]


async def test_idle_stream_sends_heartbeat_comments(asgi_stream):
    loop = asyncio.get_running_loop()
    stream = await asgi_stream(IM_PATH)
    assert await stream.chunk() == CONNECTED
    connected_at = loop.time()

    assert await stream.chunk(2) == PING
    assert await stream.chunk(2) == PING
    # Heartbeat is 0.2 s in the test settings: two pings take at least two intervals.
    assert loop.time() - connected_at >= 0.35


async def test_events_postpone_the_heartbeat(asgi_stream, settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 1.5
    newest = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(newest)})
    assert await stream.chunk() == CONNECTED

    # Six events 0.4 s apart span more than one heartbeat, yet no ping is due between them.
    for _ in range(6):
        await asyncio.sleep(0.4)
        await sync_to_async(post_messages)(1)
        assert (await stream.chunk(2)).startswith(b"id: ")


async def test_lifetime_cap_ends_the_response_normally(asgi_stream, settings):
    settings.CSGCLAW_SSE_MAX_LIFETIME = 0.5
    loop = asyncio.get_running_loop()
    stream = await asgi_stream(IM_PATH)
    opened_at = loop.time()

    chunks = []
    while not stream.ended:
        chunks.append(await stream.chunk(3))

    assert chunks[0] == CONNECTED
    assert chunks[-1] == b""
    assert set(chunks[1:-1]) <= {PING}
    assert 0.4 <= loop.time() - opened_at < 5
    await stream.communicator.wait(2)


async def test_disconnect_cancels_the_generator_and_unsubscribes(asgi_stream):
    before = broker.subscriber_count
    stream = await asgi_stream(IM_PATH)
    assert await stream.chunk() == CONNECTED
    assert broker.subscriber_count == before + 1

    await stream.disconnect()

    assert stream.communicator.future.done()
    assert broker.subscriber_count == before


# --- start cursor ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["header", "query"])
@pytest.mark.parametrize("form", ["seq", "zero_padded_seq", "message_id"])
async def test_resume_after_a_cursor_then_live(asgi_stream, source, form):
    first, second, third = await sync_to_async(post_messages)(3)
    cursor = {
        "seq": str(first.seq),
        "zero_padded_seq": "0" * 5000 + str(first.seq),
        "message_id": first.message_id,
    }[form]
    where = (
        {"headers": {"Last-Event-ID": cursor}} if source == "header" else {"query": {"last_event_id": cursor}}
    )
    stream = await asgi_stream(IM_PATH, **where)
    assert await stream.chunk() == CONNECTED

    replayed = await stream.frames(2)
    assert [frame.id for frame in replayed] == [second.seq, third.seq]
    assert [frame.data for frame in replayed] == [second.payload, third.payload]

    (live,) = await sync_to_async(post_messages)(1)
    assert (await stream.frame()).id == live.seq


async def test_header_cursor_wins_over_query(asgi_stream):
    first, second, third = await sync_to_async(post_messages)(3)
    stream = await asgi_stream(
        IM_PATH, headers={"Last-Event-ID": str(second.seq)}, query={"last_event_id": str(first.seq)}
    )
    assert await stream.chunk() == CONNECTED

    assert (await stream.frame()).id == third.seq


@pytest.mark.parametrize("unusable_header", ["msg-never-sent", "soon", "-1"])
async def test_unusable_header_falls_back_to_query(asgi_stream, unusable_header):
    first, second = await sync_to_async(post_messages)(2)
    stream = await asgi_stream(
        IM_PATH, headers={"Last-Event-ID": unusable_header}, query={"last_event_id": str(first.seq)}
    )
    assert await stream.chunk() == CONNECTED

    assert (await stream.frame()).id == second.seq


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1_0",
        "1.0",
        "1e3",
        "0x1",
        "١",
        "１",
        "abc",
        "msg-",
        "msg-never-sent",
        "MSG-1",
    ],
)
async def test_unusable_cursor_values_start_at_now(asgi_stream, value):
    await sync_to_async(post_messages)(2)
    stream = await open_idle(asgi_stream, query={"last_event_id": value})

    (live,) = await sync_to_async(post_messages)(1)

    frame = await stream.frame()
    assert (frame.id, frame.event) == (live.seq, "")


async def test_a_message_without_a_message_created_event_is_no_cursor(asgi_stream):
    room = await sync_to_async(services.room_create)(
        creator_id=ADMIN_ID, title="project", member_ids=[MANAGER_ID]
    )
    # The "created the room" line is a message, but its event is room.created.
    intro = await sync_to_async(room.messages.get)()
    stream = await open_idle(asgi_stream, headers={"Last-Event-ID": intro.message_id})

    (live,) = await sync_to_async(post_messages)(1)
    assert (await stream.frame()).id == live.seq


def reset_bytes(newest: int) -> bytes:
    return f'id: {newest}\nevent: reset\ndata: {{"type":"reset","last_event_id":{newest}}}\n\n'.encode()


def prune_before(event: Event) -> None:
    """Age the log through `event` past retention, then prune it."""
    Event.objects.filter(seq__lte=event.seq).update(created_at=timezone.now() - timedelta(days=30))
    services.events_prune(older_than=timezone.now() - timedelta(days=7))


async def test_cursor_below_the_pruned_mark_gets_a_reset_then_live_events(asgi_stream):
    first, second, third = await sync_to_async(post_messages)(3)
    await sync_to_async(prune_before)(second)
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(first.seq)})
    assert await stream.chunk() == CONNECTED

    assert await stream.chunk() == reset_bytes(third.seq)
    (live,) = await sync_to_async(post_messages)(1)
    assert (await stream.frame()).id == live.seq


async def test_cursor_at_the_pruned_mark_is_no_reset(asgi_stream):
    _, second, third = await sync_to_async(post_messages)(3)
    await sync_to_async(prune_before)(second)
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(second.seq)})
    assert await stream.chunk() == CONNECTED

    frame = await stream.frame()
    assert (frame.id, frame.event) == (third.seq, "")


async def test_cursor_survives_pruning_the_whole_log(asgi_stream):
    *_, last = await sync_to_async(post_messages)(2)
    await sync_to_async(prune_before)(last)
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(last.seq)})
    assert await stream.chunk() == CONNECTED

    (live,) = await sync_to_async(post_messages)(1)
    frame = await stream.frame()
    assert (frame.id, frame.event) == (live.seq, "")
    assert live.seq > last.seq


@pytest.mark.parametrize("ahead", ["1", "9" * 5000])
async def test_cursor_above_the_newest_seq_gets_a_reset(asgi_stream, ahead):
    *_, newest = await sync_to_async(post_messages)(2)
    cursor = str(newest.seq + 1) if ahead == "1" else ahead
    stream = await asgi_stream(IM_PATH, query={"last_event_id": cursor})
    assert await stream.chunk() == CONNECTED

    assert await stream.chunk() == reset_bytes(newest.seq)
    (live,) = await sync_to_async(post_messages)(1)
    assert (await stream.frame()).id == live.seq


# --- delivery ----------------------------------------------------------------------------------------


async def test_slow_reader_gets_200_events_in_order_without_loss(asgi_stream, settings):
    settings.CSGCLAW_SSE_BATCH = 16
    stream = await open_idle(asgi_stream)

    writer = asyncio.ensure_future(sync_to_async(post_messages)(200))
    received = []
    while len(received) < 200:
        received.append(await stream.frame(10))
        await asyncio.sleep(0.002)
    written = await writer

    assert [frame.id for frame in received] == [event.seq for event in written]
    assert [frame.data for frame in received] == [event.payload for event in written]


async def test_a_commit_on_another_thread_wakes_the_stream_promptly(asgi_stream, settings):
    # Polls and heartbeats far away: only the doorbell can deliver within the bound below.
    settings.CSGCLAW_SSE_POLL_INTERVAL = 30
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    loop = asyncio.get_running_loop()
    newest = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(newest)})
    assert await stream.chunk() == CONNECTED
    await asyncio.sleep(0.3)  # the stream has read the log and waits for its doorbell

    started = loop.time()
    writer = in_own_thread(post_messages, 1)
    frame = await stream.frame(5)
    await asyncio.to_thread(writer.join)

    assert loop.time() - started < 3
    assert frame.data["type"] == events.MESSAGE_CREATED


async def test_a_lost_doorbell_costs_only_the_poll_interval(asgi_stream, settings, monkeypatch):
    settings.CSGCLAW_SSE_POLL_INTERVAL = 0.3
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    # As for a write in another process without Redis: nothing rings here.
    monkeypatch.setattr(broker, "ring", lambda seq=0: None)
    newest = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(newest)})
    assert await stream.chunk() == CONNECTED
    await asyncio.sleep(0.1)

    (written,) = await sync_to_async(post_messages)(1)

    assert (await stream.frame(3)).id == written.seq


def send_and_roll_back() -> None:
    class Abandoned(Exception):
        pass

    try:
        with transaction.atomic():
            services.message_send(room_id=seed_room().id, sender_id=ADMIN_ID, content="never committed")
            raise Abandoned
    except Abandoned:
        pass


async def test_a_rolled_back_transaction_publishes_nothing(asgi_stream):
    newest = await sync_to_async(event_newest_seq)()
    stream = await asgi_stream(IM_PATH, headers={"Last-Event-ID": str(newest)})
    assert await stream.chunk() == CONNECTED
    doorbell = broker.subscribe()
    try:
        await sync_to_async(send_and_roll_back)()

        assert not await doorbell.wait(0.3)
        assert [await stream.chunk(2) for _ in range(3)] == [PING] * 3
        (committed,) = await sync_to_async(post_messages)(1)
        assert (await stream.frame()).id == committed.seq
    finally:
        broker.unsubscribe(doorbell)
    assert not await sync_to_async(Message.objects.filter(content="never committed").exists)()


# --- feeds: what the bot and Feishu streams plug in --------------------------------------------------


class RecordingMemory:
    """A cursor memory that remembers nothing durable, so the generator's calls can be asserted."""

    def __init__(self, remembered: int | None) -> None:
        self.remembered = remembered
        self.calls: list[tuple[Any, ...]] = []

    def recall(self) -> int | None:
        self.calls.append(("recall",))
        return self.remembered

    def claim(self) -> bool:
        return True

    def remember(self, seq: int, *, force: bool) -> None:
        self.calls.append(("remember", seq, force))


def bot_style_data(event: LoggedEvent) -> dict[str, Any]:
    return {**event.bot_payload, **({"mentions": ["u-alice"]} if event.mentioned else {})}


BOT_STYLE_SELECTION = EventSelection(
    stream=EventStream.IM, recipient_id="u-alice", types=(events.MESSAGE_CREATED,)
)


def alice_conversation() -> list[Event]:
    """A direct message to alice, a group message for someone else, a group message mentioning her."""
    make_user("u-alice")
    make_user("u-bob")
    direct = make_room(members=[ADMIN_ID, "u-alice"], is_direct=True)
    group = make_room(members=[ADMIN_ID, "u-alice", "u-bob"])
    return [
        *post_messages(1, room_id=direct.id, content="direct"),
        *post_messages(1, room_id=group.id, content="@bob only"),
        *post_messages(1, room_id=group.id, content="@alice please"),
    ]


async def next_chunk(stream) -> bytes:
    return await asyncio.wait_for(anext(stream), 5)


async def alist(stream) -> list[bytes]:
    return [chunk async for chunk in stream]


async def test_a_recipient_feed_replays_its_rows_with_its_event_name_and_memory(settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    settings.CSGCLAW_SSE_MAX_LIFETIME = 0.5
    direct, _, mentioned = await sync_to_async(alice_conversation)()
    memory = RecordingMemory(remembered=direct.seq - 1)
    feed = Feed(selection=BOT_STYLE_SELECTION, data=bot_style_data, event_name="message", memory=memory)
    stream = event_stream(feed, requested=(None, ""))

    chunks = await asyncio.wait_for(alist(stream), 5)

    assert len(chunks) == 3
    connected, first, second = chunks
    assert connected == CONNECTED
    assert first == f"id: {direct.seq}\nevent: message\ndata: {compact(direct.bot_payload)}\n\n".encode()
    mentioned_data = {**mentioned.bot_payload, "mentions": ["u-alice"]}
    assert second == f"id: {mentioned.seq}\nevent: message\ndata: {compact(mentioned_data)}\n\n".encode()
    assert memory.calls == [
        ("recall",),
        ("remember", direct.seq - 1, True),
        ("remember", mentioned.seq, False),
        ("remember", mentioned.seq, True),
    ]


async def test_a_requested_cursor_wins_over_the_remembered_one(settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    direct, _, mentioned = await sync_to_async(alice_conversation)()
    memory = RecordingMemory(remembered=0)
    feed = Feed(selection=BOT_STYLE_SELECTION, data=bot_style_data, event_name="message", memory=memory)
    stream = event_stream(feed, requested=(direct.message_id, None))

    assert await next_chunk(stream) == CONNECTED
    assert (await next_chunk(stream)).startswith(f"id: {mentioned.seq}\n".encode())
    await stream.aclose()

    assert ("recall",) not in memory.calls


async def test_a_stale_remembered_cursor_gets_a_reset(settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    first, second = await sync_to_async(post_messages)(2)
    await sync_to_async(prune_before)(first)
    feed = Feed(selection=EventSelection(), data=lambda event: event.payload, memory=RecordingMemory(0))
    stream = event_stream(feed, requested=(None, None))

    assert await next_chunk(stream) == CONNECTED
    assert await next_chunk(stream) == reset_bytes(second.seq)
    await stream.aclose()


class BlockingMemory(RecordingMemory):
    """Progress writes wait until released: a slow database, as seen by the stream."""

    def __init__(self) -> None:
        super().__init__(remembered=None)
        self.release = threading.Event()
        self.progress_started = threading.Event()

    def remember(self, seq: int, *, force: bool) -> None:
        super().remember(seq, force=force)
        if not force:
            self.progress_started.set()
            self.release.wait(10)


async def test_a_slow_cursor_memory_write_never_holds_up_frames(settings):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    start = await sync_to_async(event_newest_seq)()
    memory = BlockingMemory()
    feed = Feed(selection=EventSelection(), data=lambda event: event.payload, memory=memory)
    stream = event_stream(feed, requested=(str(start), None))
    assert await next_chunk(stream) == CONNECTED

    (first,) = await sync_to_async(post_messages)(1)
    assert (await next_chunk(stream)).startswith(f"id: {first.seq}\n".encode())
    after_first = asyncio.ensure_future(next_chunk(stream))
    assert await asyncio.to_thread(memory.progress_started.wait, 5)
    # The progress write of the first frame is still running; the next frames do not wait for it.
    second, third = await sync_to_async(post_messages)(2)
    assert (await after_first).startswith(f"id: {second.seq}\n".encode())
    assert (await next_chunk(stream)).startswith(f"id: {third.seq}\n".encode())
    asleep = asyncio.ensure_future(next_chunk(stream))
    await asyncio.sleep(0.2)
    memory.release.set()
    asleep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asleep

    # Progress asked for while a write ran was dropped; the final write lands last, after it.
    assert memory.calls == [
        ("remember", start, True),
        ("remember", first.seq, False),
        ("remember", third.seq, True),
    ]
