"""The bot event stream over ASGI (events.md §3, §5.7): delivery rules, payload, resume and cursor memory."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from bots.bridge.cursors import (
    COALESCE_SECONDS,
    ProgressSlots,
    StoredCursorMemory,
    StreamCursorKind,
    stream_cursor_recall,
    stream_cursor_remember,
)
from core.config import clear_config_cache
from im import services
from im.events import MESSAGE_CREATED
from im.identity import ADMIN_ID
from im.models import Event, Message, Room, StreamCursor
from im.realtime.eventlog import event_newest_seq
from im.tests.factories import make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

BOT = "u-alice"
OTHER_BOT = "u-bob"
TOKEN = "bot-stream-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTED = b": connected\n\n"
PING = b": ping\n\n"
BOT_FRAME_KEYS = ["message_id", "room_id", "chat_id", "chat_type", "sender", "text", "timestamp"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def events_path(bot_id: str = BOT) -> str:
    return f"/api/bots/{bot_id}/events"


@pytest.fixture(autouse=True)
def server_config(settings, tmp_path):
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    # Streams outlive a slow CI box's test; the lifetime tests shorten it again.
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    settings.CSGCLAW_STREAM_RESUME_WINDOW = 600
    clear_config_cache()
    yield
    clear_config_cache()


@dataclass(frozen=True)
class Rooms:
    direct: Room  # admin ↔ alice, is_direct
    group: Room  # admin, alice, bob
    pair: Room  # admin, alice: two members, but a group room
    outside: Room  # admin, bob: alice is not a member


@pytest.fixture
def rooms() -> Rooms:
    make_user(BOT)
    make_user(OTHER_BOT)
    return Rooms(
        direct=make_room(members=[ADMIN_ID, BOT], is_direct=True, title="alice"),
        group=make_room(members=[ADMIN_ID, BOT, OTHER_BOT], title="team"),
        pair=make_room(members=[ADMIN_ID, BOT], title="pair"),
        outside=make_room(members=[ADMIN_ID, OTHER_BOT], title="outside"),
    )


def send(room: Room, content: str, *, sender_id: str = ADMIN_ID) -> Message:
    return services.message_send(room_id=room.id, sender_id=sender_id, content=content).message


def seq_of(message: Message) -> int:
    return Event.objects.get(type=MESSAGE_CREATED, message_id=message.message_id).seq


async def asend(room: Room, content: str, *, sender_id: str = ADMIN_ID) -> tuple[Message, int]:
    """Send as a separate request would; returns the message and the seq of its `message.created`."""

    def run() -> tuple[Message, int]:
        message = send(room, content, sender_id=sender_id)
        return message, seq_of(message)

    return await sync_to_async(run)()


async def newest() -> int:
    return await sync_to_async(event_newest_seq)()


def unix_millis_text(moment: datetime) -> str:
    return str((moment - EPOCH) // timedelta(milliseconds=1))


async def open_from_now(asgi_stream, bot_id: str = BOT, **kwargs: Any):
    """A bot stream resuming from the newest seq, so everything sent afterwards must arrive."""
    headers = {**AUTH, "Last-Event-ID": str(await newest())}
    stream = await asgi_stream(events_path(bot_id), headers=headers, **kwargs)
    assert stream.status == 200
    assert await stream.chunk() == CONNECTED
    return stream


async def open_idle(asgi_stream, bot_id: str = BOT, **kwargs: Any):
    """A bot stream without a cursor that has resolved its start (the first heartbeat came after it)."""
    stream = await asgi_stream(events_path(bot_id), headers=AUTH, **kwargs)
    assert stream.status == 200
    assert await stream.chunk() == CONNECTED
    assert await stream.chunk() == PING
    return stream


def texts(frames) -> list[str]:
    return [frame.data["text"] for frame in frames]


# --- response --------------------------------------------------------------------------------------------


async def test_response_is_an_event_stream_that_starts_with_connected(asgi_stream, rooms):
    stream = await asgi_stream(events_path(), headers=AUTH)

    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "connection" not in stream.headers
    assert await stream.chunk() == CONNECTED
    assert await stream.chunk() == PING


async def test_a_trailing_slash_after_events_is_still_the_stream(asgi_stream, rooms):
    stream = await asgi_stream(events_path() + "/", headers=AUTH)

    assert stream.status == 200
    assert await stream.chunk() == CONNECTED


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
async def test_events_is_get_only(asgi_stream, method):
    stream = await asgi_stream(events_path(), headers=AUTH, method=method)

    assert stream.status == 405
    assert stream.headers["content-type"] == "text/plain; charset=utf-8"


async def test_auth_is_checked_before_the_method(asgi_stream):
    stream = await asgi_stream(events_path(), headers={"Authorization": "Bearer wrong"}, method="POST")

    assert stream.status == 401
    assert await stream.chunk() == b"unauthorized\n"


# --- delivery rules --------------------------------------------------------------------------------------

AT_ALICE = f'<at user_id="{BOT}">alice</at>'


@pytest.mark.parametrize(
    ("room", "sender", "content", "delivered", "mentioned"),
    [
        pytest.param("direct", ADMIN_ID, "hello alice", True, False, id="direct-room-everything"),
        pytest.param("direct", ADMIN_ID, "@alice hello", True, True, id="direct-room-with-mention"),
        pytest.param("group", ADMIN_ID, f"{AT_ALICE} build the page", True, True, id="group-at-tag"),
        pytest.param("group", ADMIN_ID, "@alice build the page", True, True, id="group-at-handle"),
        pytest.param("group", ADMIN_ID, "build the page, anyone", False, False, id="group-no-mention"),
        pytest.param("group", ADMIN_ID, "@bob build the page", False, False, id="group-other-mention"),
        pytest.param("group", ADMIN_ID, "mail@alice please", False, False, id="group-not-a-mention"),
        pytest.param("pair", ADMIN_ID, "just us two", False, False, id="two-member-group-no-mention"),
        pytest.param("pair", ADMIN_ID, "@alice just us two", True, True, id="two-member-group-mention"),
        pytest.param("direct", BOT, "my own words", False, False, id="own-message-direct"),
        pytest.param("group", BOT, "@alice note to self", False, False, id="own-message-self-mention"),
        pytest.param("outside", ADMIN_ID, "@alice you are not here", False, False, id="non-member"),
        pytest.param("group", OTHER_BOT, f"{AT_ALICE} from bob", True, True, id="bot-to-bot-mention"),
        pytest.param("group", OTHER_BOT, "bob to the room", False, False, id="bot-to-bot-no-mention"),
    ],
)
async def test_delivery_rules(asgi_stream, rooms, room, sender, content, delivered, mentioned):
    stream = await open_from_now(asgi_stream)

    message, seq = await asend(getattr(rooms, room), content, sender_id=sender)
    # A message that is always delivered: whatever arrives before it is what the case delivered.
    _, sentinel_seq = await asend(rooms.direct, "sentinel")

    first = await stream.frame()
    if delivered:
        assert (first.id, first.event, first.data["message_id"]) == (seq, "message", message.message_id)
        assert ("mentions" in first.data) is mentioned
        if mentioned:
            assert first.data["mentions"] == [BOT]
        first = await stream.frame()
    assert (first.id, first.data["text"]) == (sentinel_seq, "sentinel")


async def test_no_room_user_or_agent_events_reach_a_bot(asgi_stream, rooms):
    stream = await open_from_now(asgi_stream)

    def room_events() -> None:
        room = services.room_create(creator_id=ADMIN_ID, title="new", member_ids=[BOT])
        services.room_invite(room_id=room.id, inviter_id=ADMIN_ID, user_ids=[OTHER_BOT])
        services.room_delete(room_id=room.id)

    await sync_to_async(room_events)()
    _, sentinel_seq = await asend(rooms.direct, "sentinel")

    assert (await stream.frame()).id == sentinel_seq


async def test_payload_keys_order_and_values(asgi_stream, rooms):
    stream = await open_from_now(asgi_stream)

    content = f'{AT_ALICE} build the "settings" page\n第二行'
    message, seq = await asend(rooms.group, content)
    frame = await stream.frame()

    expected = {
        "message_id": message.message_id,
        "room_id": rooms.group.id,
        "chat_id": rooms.group.id,
        "chat_type": "group",
        "sender": {"id": ADMIN_ID, "username": "admin", "display_name": "admin"},
        "text": content,
        "timestamp": unix_millis_text(message.created_at),
        "mentions": [BOT],
    }
    body = json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    assert frame.raw == f"id: {seq}\nevent: message\ndata: {body}\n\n".encode()
    assert list(frame.data) == [*BOT_FRAME_KEYS, "mentions"]
    assert frame.data["timestamp"].isdigit() and len(frame.data["timestamp"]) == 13


async def test_unmentioned_direct_message_has_no_mentions_key(asgi_stream, rooms):
    stream = await open_from_now(asgi_stream)

    message, _ = await asend(rooms.direct, "hello")
    frame = await stream.frame()

    assert list(frame.data) == BOT_FRAME_KEYS
    assert frame.data["chat_type"] == "direct"
    assert frame.data["chat_id"] == frame.data["room_id"] == rooms.direct.id
    assert frame.data["timestamp"] == unix_millis_text(message.created_at)


async def test_an_unknown_bot_gets_an_open_empty_stream(asgi_stream, rooms):
    stream = await asgi_stream(events_path("u-nobody"), headers={**AUTH, "Last-Event-ID": "0"})
    assert stream.status == 200
    assert await stream.chunk() == CONNECTED

    await asend(rooms.direct, "hello alice")
    await asend(rooms.group, "@nobody hello")
    chunks = [await stream.chunk() for _ in range(4)]

    assert chunks == [PING] * 4


async def test_several_subscribers_of_one_bot_each_get_every_event(asgi_stream, rooms):
    streams = [await open_from_now(asgi_stream) for _ in range(3)]

    sent = [(await asend(rooms.direct, f"message {n}"))[1] for n in range(3)]

    for stream in streams:
        assert [frame.id for frame in await stream.frames(3)] == sent


async def test_a_message_to_many_streams_of_one_bot_is_remembered_once(
    asgi_stream, rooms, settings, monkeypatch
):
    settings.CSGCLAW_SSE_HEARTBEAT = 30
    streams = [await open_from_now(asgi_stream) for _ in range(10)]
    progress: list[int] = []
    remember = StoredCursorMemory.remember

    def recorded(memory: StoredCursorMemory, seq: int, *, force: bool) -> None:
        if not force:
            progress.append(seq)
        remember(memory, seq, force=force)

    monkeypatch.setattr(StoredCursorMemory, "remember", recorded)
    # The forced writes on connect (made just after `: connected`) hold the bot's progress slot a while.
    await asyncio.sleep(COALESCE_SECONDS + 0.5)

    _, seq = await asend(rooms.direct, "hello, all of you")
    for stream in streams:
        assert [frame.id for frame in await stream.frames(1)] == [seq]
    await asyncio.sleep(0.2)

    assert progress == [seq]
    assert (await astored_cursor()).seq == seq


async def test_bot_send_reaches_the_im_stream_the_other_bot_and_history(asgi_stream, async_client, rooms):
    im_stream = await asgi_stream("/api/v1/im/events", headers={"Last-Event-ID": str(await newest())})
    assert await im_stream.chunk() == CONNECTED
    bob_stream = await open_from_now(asgi_stream, OTHER_BOT)

    response = await async_client.post(
        f"/api/bots/{BOT}/messages/send",
        data=json.dumps({"room_id": rooms.group.id, "text": '<at user_id="u-bob">bob</at> review it'}),
        content_type="application/json",
        headers=AUTH,
    )
    assert response.status_code == 200
    message_id = response.json()["message_id"]

    im_frame = await im_stream.frame()
    assert im_frame.data["type"] == MESSAGE_CREATED
    assert im_frame.data["message"]["id"] == message_id
    assert im_frame.data["sender"]["id"] == BOT
    bob_frame = await bob_stream.frame()
    assert (bob_frame.data["message_id"], bob_frame.data["mentions"]) == (message_id, [OTHER_BOT])
    history = await async_client.get("/api/v1/messages", {"room_id": rooms.group.id})
    assert history.json()[-1]["id"] == message_id
    assert history.json()[-1]["sender_id"] == BOT


# --- resume --------------------------------------------------------------------------------------------


async def three_direct_messages(rooms: Rooms) -> list[tuple[Message, int]]:
    return [await asend(rooms.direct, f"missed {n}") for n in range(3)]


@pytest.mark.parametrize("form", ["seq", "message_id"])
@pytest.mark.parametrize("source", ["header", "query"])
async def test_resume_by_seq_or_message_id(asgi_stream, rooms, form, source):
    (first, first_seq), *rest = await three_direct_messages(rooms)
    cursor = str(first_seq) if form == "seq" else first.message_id
    if source == "header":
        stream = await asgi_stream(events_path(), headers={**AUTH, "Last-Event-ID": cursor})
    else:
        stream = await asgi_stream(events_path(), headers=AUTH, query={"last_event_id": cursor})
    assert await stream.chunk() == CONNECTED

    replayed = await stream.frames(2)
    _, live_seq = await asend(rooms.direct, "live")

    assert [frame.id for frame in replayed] == [seq for _, seq in rest]
    assert (await stream.frame()).id == live_seq


def reset_bytes(seq: int) -> bytes:
    return f'id: {seq}\nevent: reset\ndata: {{"type":"reset","last_event_id":{seq}}}\n\n'.encode()


async def test_a_cursor_from_the_future_gets_a_reset_then_live_events(asgi_stream, rooms):
    current = await newest()
    stream = await asgi_stream(events_path(), headers={**AUTH, "Last-Event-ID": str(current + 1000)})
    assert await stream.chunk() == CONNECTED

    assert await stream.chunk() == reset_bytes(current)
    _, live_seq = await asend(rooms.direct, "live")
    assert (await stream.frame()).id == live_seq


async def test_a_pruned_cursor_gets_a_reset(asgi_stream, rooms):
    (_, first_seq), *_, (_, last_seq) = await three_direct_messages(rooms)

    def prune() -> None:
        Event.objects.filter(seq__lte=last_seq - 1).update(created_at=timezone.now() - timedelta(days=30))
        services.events_prune(older_than=timezone.now() - timedelta(days=7))

    await sync_to_async(prune)()
    stream = await asgi_stream(events_path(), headers={**AUTH, "Last-Event-ID": str(first_seq)})
    assert await stream.chunk() == CONNECTED

    assert await stream.chunk() == reset_bytes(last_seq)


# --- cursor memory -------------------------------------------------------------------------------------


def stored_cursor(kind: str = StreamCursorKind.BOT, key: str = BOT) -> StreamCursor | None:
    return StreamCursor.objects.filter(kind=kind, key=key).first()


async def astored_cursor(kind: str = StreamCursorKind.BOT, key: str = BOT) -> StreamCursor | None:
    return await sync_to_async(stored_cursor)(kind, key)


async def test_connect_stores_the_start_cursor(asgi_stream, rooms):
    start = await newest()
    await open_idle(asgi_stream)

    cursor = await astored_cursor()
    assert cursor is not None and cursor.seq == start


async def test_heartbeats_touch_the_stored_cursor(asgi_stream, rooms):
    await open_idle(asgi_stream)
    connected_at = (await astored_cursor()).updated_at

    async def touched() -> None:
        while (await astored_cursor()).updated_at == connected_at:
            await asyncio.sleep(0.1)

    # Heartbeats come every 0.2 s; writes are coalesced to one per second.
    await asyncio.wait_for(touched(), 5)


async def test_disconnect_flushes_the_last_delivered_seq(asgi_stream, rooms):
    stream = await open_idle(asgi_stream)
    sent = [(await asend(rooms.direct, f"message {n}"))[1] for n in range(3)]
    assert [frame.id for frame in await stream.frames(3)] == sent

    await stream.disconnect()

    assert (await astored_cursor()).seq == sent[-1]


async def test_reconnect_without_cursor_within_the_window_replays_what_was_missed(asgi_stream, rooms):
    stream = await open_idle(asgi_stream)
    _, seen_seq = await asend(rooms.direct, "seen")
    assert (await stream.frame()).id == seen_seq
    await stream.disconnect()

    missed = [(await asend(rooms.direct, f"missed {n}"))[1] for n in range(3)]
    await asend(rooms.group, "not for alice")
    again = await asgi_stream(events_path(), headers=AUTH)
    assert await again.chunk() == CONNECTED

    assert [frame.id for frame in await again.frames(3)] == missed
    _, live_seq = await asend(rooms.direct, "live")
    assert (await again.frame()).id == live_seq


async def test_reconnect_outside_the_window_starts_at_now(asgi_stream, rooms):
    stream = await open_idle(asgi_stream)
    await stream.disconnect()
    await asend(rooms.direct, "missed long ago")

    def age_the_cursor() -> None:
        StreamCursor.objects.filter(kind=StreamCursorKind.BOT, key=BOT).update(
            updated_at=timezone.now() - timedelta(seconds=601)
        )

    await sync_to_async(age_the_cursor)()
    again = await open_idle(asgi_stream)

    _, live_seq = await asend(rooms.direct, "live")
    assert (await again.frame()).id == live_seq


async def test_cursor_memory_carries_a_bot_across_the_lifetime_cap(asgi_stream, rooms, settings):
    settings.CSGCLAW_SSE_MAX_LIFETIME = 1
    stream = await open_idle(asgi_stream)
    _, first_seq = await asend(rooms.direct, "before the cap")
    assert (await stream.frame()).id == first_seq
    while not stream.ended:
        await stream.chunk()

    _, gap_seq = await asend(rooms.direct, "during the gap")
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    again = await asgi_stream(events_path(), headers=AUTH)
    assert await again.chunk() == CONNECTED

    assert (await again.frame()).id == gap_seq


async def test_a_requested_cursor_wins_over_the_remembered_one(asgi_stream, rooms):
    (_, first_seq), (_, second_seq), (_, third_seq) = await three_direct_messages(rooms)
    await sync_to_async(stream_cursor_remember)(kind=StreamCursorKind.BOT, key=BOT, seq=third_seq)

    stream = await asgi_stream(events_path(), headers={**AUTH, "Last-Event-ID": str(first_seq)})
    assert await stream.chunk() == CONNECTED

    assert [frame.id for frame in await stream.frames(2)] == [second_seq, third_seq]


async def test_memory_is_per_bot(asgi_stream, rooms):
    await open_idle(asgi_stream, OTHER_BOT)
    await asend(rooms.direct, "for alice, while only bob listened")

    stream = await open_idle(asgi_stream)
    _, live_seq = await asend(rooms.direct, "live")
    assert (await stream.frame()).id == live_seq


# --- the cursor service --------------------------------------------------------------------------------


def test_remember_creates_then_keeps_the_maximum_and_touches_updated_at():
    stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=10)
    first = stored_cursor()
    stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=4)
    second = stored_cursor()

    assert (first.seq, second.seq) == (10, 10)
    assert second.updated_at > first.updated_at
    stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=12)
    assert stored_cursor().seq == 12
    assert StreamCursor.objects.count() == 1


def test_bot_and_feishu_cursors_are_separate():
    stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=3)
    stream_cursor_remember(kind=StreamCursorKind.FEISHU, key=BOT, seq=7)

    assert stored_cursor(StreamCursorKind.BOT).seq == 3
    assert stored_cursor(StreamCursorKind.FEISHU).seq == 7


def test_concurrent_writers_store_the_maximum():
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(seq: int) -> None:
        try:
            barrier.wait()
            for step in range(5):
                stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=seq * 10 + step)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(seq,)) for seq in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert StreamCursor.objects.get(kind=StreamCursorKind.BOT, key=BOT).seq == 74


def test_recall_only_within_the_window():
    stream_cursor_remember(kind=StreamCursorKind.BOT, key=BOT, seq=5)

    assert stream_cursor_recall(kind=StreamCursorKind.BOT, key=BOT, window=60) == 5
    StreamCursor.objects.update(updated_at=timezone.now() - timedelta(seconds=61))
    assert stream_cursor_recall(kind=StreamCursorKind.BOT, key=BOT, window=60) is None
    assert stream_cursor_recall(kind=StreamCursorKind.BOT, key="u-never", window=60) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_memory_writes_progress_at_most_once_per_second_but_always_when_forced():
    clock = FakeClock()
    memory = StoredCursorMemory(kind=StreamCursorKind.BOT, key=BOT, slots=ProgressSlots(clock))

    memory.remember(1, force=True)
    assert not memory.claim()
    clock.now += 1.0
    assert memory.claim()
    memory.remember(3, force=False)
    assert stored_cursor().seq == 3
    assert not memory.claim()
    memory.remember(4, force=True)
    assert stored_cursor().seq == 4
    assert memory.recall() == 4


def test_streams_of_one_bot_share_the_progress_slot_and_other_keys_do_not():
    clock = FakeClock()
    slots = ProgressSlots(clock)
    streams = [StoredCursorMemory(kind=StreamCursorKind.BOT, key=BOT, slots=slots) for _ in range(100)]

    assert [memory.claim() for memory in streams].count(True) == 1
    assert StoredCursorMemory(kind=StreamCursorKind.BOT, key="u-other", slots=slots).claim()
    assert StoredCursorMemory(kind=StreamCursorKind.FEISHU, key=BOT, slots=slots).claim()
    clock.now += 1.0
    assert [memory.claim() for memory in streams].count(True) == 1


def test_progress_slots_stay_bounded_by_recent_keys():
    clock = FakeClock()
    slots = ProgressSlots(clock)
    for number in range(ProgressSlots.MAX_KEYS):
        assert slots.claim(StreamCursorKind.BOT, f"u-{number}")
    clock.now += 1.0
    assert slots.claim(StreamCursorKind.BOT, "u-new")

    # The old slots had expired, so dropping them changed no answer.
    assert len(slots) == 1
    assert not slots.claim(StreamCursorKind.BOT, "u-new")
    assert slots.claim(StreamCursorKind.BOT, "u-0")


def test_memory_of_an_id_too_long_to_exist_stores_nothing():
    memory = StoredCursorMemory(kind=StreamCursorKind.BOT, key="u-" + "x" * 200)

    memory.remember(5, force=True)

    assert not memory.claim()
    assert memory.recall() is None
    assert StreamCursor.objects.count() == 0
