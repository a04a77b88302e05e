"""The participant event stream over ASGI (participants.md §2.1–2.6): checks, frames, rendering, catch-up."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from agents.models import Agent
from bots.bridge.cursors import StreamCursorKind
from bots.participants import stream as participant_stream
from bots.participants.services import participant_message_send
from bots.participants.stream import frame_copies_files
from bots.services import bot_message_send
from core.config import clear_config_cache
from im.identity import ADMIN_ID
from im.models import Event, Message, StreamCursor
from im.realtime.eventlog import LoggedEvent, event_newest_seq
from im.services import message_send
from im.tests.factories import make_agent, make_room, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

TOKEN = "participant-stream-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTED = b": connected\n\n"
HEARTBEAT = b": heartbeat\n\n"
DIRECT = "room-dev-direct"
GROUP = "room-team"
OUTSIDE = "room-outside"
BOB_DIRECT = "room-bob-direct"
FRAME_KEYS = [
    "message_id",
    "room_id",
    "channel",
    "chat_id",
    "chat_type",
    "sender",
    "sender_id",
    "text",
    "timestamp",
    "context",
]
CONTEXT_KEYS = ["channel", "account", "chat_id", "chat_type", "sender_id", "message_id", "raw"]


def events_path(participant_id: str = "pt-dev", channel: str = "csgclaw") -> str:
    return f"/api/v1/channels/{channel}/participants/{participant_id}/events"


@pytest.fixture(autouse=True)
def server_config(settings, tmp_path):
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    settings.CSGCLAW_PARTICIPANT_REPLAY_WINDOW = 1800
    clear_config_cache()
    yield
    clear_config_cache()


@pytest.fixture(autouse=True)
def team() -> None:
    for agent_id in ("u-dev", "u-bob"):
        make_user(agent_id)
        make_agent(agent_id)
    make_room(room_id=DIRECT, members=[ADMIN_ID, "u-dev"], is_direct=True)
    make_room(room_id=GROUP, members=[ADMIN_ID, "u-dev", "u-bob"])
    make_room(room_id=OUTSIDE, members=[ADMIN_ID, "u-bob"])
    make_room(room_id=BOB_DIRECT, members=[ADMIN_ID, "u-bob"], is_direct=True)


@dataclass(frozen=True)
class Frame:
    id: str
    event: str
    data: dict[str, Any]
    data_text: str


def parse(raw: bytes) -> Frame:
    assert raw.endswith(b"\n\n") and raw.count(b"\n\n") == 1, raw
    lines = raw.decode()[:-2].split("\n")
    fields = dict(line.split(": ", 1) for line in lines)
    assert len(fields) == len(lines) == 3 and list(fields) == ["id", "event", "data"], raw
    return Frame(fields["id"], fields["event"], json.loads(fields["data"]), fields["data"])


async def next_frame(stream, timeout: float = 5.0) -> Frame:
    """The next message frame, skipping heartbeats, within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, "no frame arrived in time"
        chunk = await stream.chunk(remaining)
        if chunk != HEARTBEAT:
            return parse(chunk)


def send(room_id: str, text: str, *, sender: str = ADMIN_ID, age: timedelta | None = None) -> Message:
    message = bot_message_send(bot_id=sender, room_id=room_id, text=text)
    if age is not None:
        Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - age)
    return message


asend = sync_to_async(send)


def event_seq(message: Message) -> int:
    return Event.objects.get(message_id=message.message_id).seq


async def open_stream(asgi_stream, participant_id: str = "pt-dev", headers: dict | None = None, **kw: Any):
    stream = await asgi_stream(events_path(participant_id), headers={**AUTH, **(headers or {})}, **kw)
    assert stream.status == 200
    assert await stream.chunk() == CONNECTED
    return stream


async def open_from_now(asgi_stream, participant_id: str = "pt-dev"):
    """A stream past its catch-up: whatever is sent afterwards is live and unfiltered (§2.6)."""
    newest = await sync_to_async(event_newest_seq)()
    stream = await open_stream(asgi_stream, participant_id, {"Last-Event-ID": str(newest)})
    # The start cursor is resolved after `: connected`; the first heartbeat comes after it.
    assert await stream.chunk() == HEARTBEAT
    return stream


# --- checks (§2.1) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/channels/csgclaw/participants//events",
        "/api/v1/channels/csgclaw/participants/%20/events",
        "/api/v1/channels/csgclaw/participants/pt-dev/events/",
        "/api/v1/channels/slack/participants/pt-dev/events",
        "/api/v1/channels/CSGCLAW/participants/pt-dev/events",
    ],
)
async def test_not_found(async_client, path: str) -> None:
    response = await async_client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.content == b"404 page not found\n"


async def test_method_is_checked_before_auth(async_client) -> None:
    response = await async_client.post(events_path())
    assert response.status_code == 405
    assert response.content == b"method not allowed\n"


async def test_bearer_is_required(async_client) -> None:
    response = await async_client.get(events_path())
    assert response.status_code == 401
    assert response.content == b"unauthorized\n"


async def test_an_agent_token_opens_its_own_participant_only(asgi_stream, async_client) -> None:
    token = await sync_to_async(lambda: Agent.objects.get(pk="u-dev").api_token)()
    own = {"Authorization": f"Bearer {token}"}

    stream = await asgi_stream(events_path("pt-dev"), headers=own)
    assert stream.status == 200
    assert (await async_client.get(events_path("pt-bob"), headers=own)).status_code == 401


# --- wire format (§2.2, §2.4) -------------------------------------------------------------------------


async def test_headers_connected_and_heartbeat(asgi_stream) -> None:
    stream = await open_stream(asgi_stream)

    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "connection" not in stream.headers
    assert await stream.chunk() == HEARTBEAT


async def test_direct_message_frame(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream)
    message = await asend(DIRECT, "hello dev")

    frame = await next_frame(stream)

    assert frame.id == message.message_id
    assert frame.event == "message"
    assert " " not in frame.data_text.replace("hello dev", "")
    data = frame.data
    assert list(data) == FRAME_KEYS
    assert data["message_id"] == message.message_id
    assert data["room_id"] == data["chat_id"] == DIRECT
    assert (data["channel"], data["chat_type"]) == ("csgclaw", "direct")
    assert data["sender"] == {"id": ADMIN_ID, "username": "admin", "display_name": "admin"}
    assert data["sender_id"] == ADMIN_ID
    assert data["text"] == "hello dev"
    expected_ms = int(message.created_at.timestamp() * 1000)
    assert abs(int(data["timestamp"]) - expected_ms) <= 1
    assert list(data["context"]) == CONTEXT_KEYS
    assert data["context"] == {
        "channel": "csgclaw",
        "account": "pt-dev",
        "chat_id": DIRECT,
        "chat_type": "direct",
        "sender_id": ADMIN_ID,
        "message_id": message.message_id,
        "raw": {"room_id": DIRECT, "thread_root_id": ""},
    }


@pytest.mark.parametrize(
    "text",
    [
        "@dev please review",
        '<at user_id="u-dev">dev</at> please review',
        '<at user_id="pt-dev">dev</at> please review',
    ],
)
async def test_group_mentions_render_the_participant_tag(asgi_stream, text: str) -> None:
    stream = await open_from_now(asgi_stream)
    await asend(GROUP, "nobody is mentioned")
    message = await asend(GROUP, text)

    frame = await next_frame(stream)

    assert frame.id == message.message_id
    data = frame.data
    assert list(data) == [*FRAME_KEYS[:9], "mentions", "mentioned", "context"]
    assert data["chat_type"] == "group"
    assert data["text"] == '<at user_id="pt-dev">dev</at> please review'
    assert data["mentions"] == ["pt-dev"]
    assert data["mentioned"] is True
    assert list(data["context"]) == [*CONTEXT_KEYS[:6], "mentioned", "raw"]
    assert data["context"]["mentioned"] is True


async def test_other_users_tags_stay_as_stored(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream)
    await asend(GROUP, '<at user_id="u-bob">bob</at> and @dev')

    frame = await next_frame(stream)

    assert frame.data["text"] == '<at user_id="u-bob">bob</at> and <at user_id="pt-dev">dev</at>'


async def test_own_non_member_and_unmentioned_messages_are_not_delivered(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream)
    await asend(DIRECT, "from dev itself", sender="u-dev")
    await asend(OUTSIDE, "@dev you are not here")
    await asend(GROUP, "no mention")
    marker = await asend(DIRECT, "marker")

    assert (await next_frame(stream)).id == marker.message_id


async def test_an_unresolved_participant_gets_an_empty_stream(asgi_stream) -> None:
    stream = await open_stream(asgi_stream, "pt-ghost")
    await asend(DIRECT, "hi")
    await asend(GROUP, '<at user_id="pt-ghost">ghost</at> hi')

    assert await stream.chunk() == HEARTBEAT
    assert await stream.chunk() == HEARTBEAT
    assert not await sync_to_async(StreamCursor.objects.filter(key="pt-ghost").exists)()


async def test_pt_admin_receives_an_agents_message_in_its_direct_room(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream, "pt-admin")
    message = await asend(DIRECT, "done", sender="u-dev")

    frame = await next_frame(stream)

    assert frame.id == message.message_id
    assert frame.data["context"]["account"] == "pt-admin"


async def test_several_streams_of_one_participant_each_get_every_frame(asgi_stream) -> None:
    first = await open_from_now(asgi_stream)
    second = await open_from_now(asgi_stream, "u-dev")
    message = await asend(DIRECT, "both")

    assert (await next_frame(first)).id == (await next_frame(second)).id == message.message_id


async def test_a_replaced_message_is_not_delivered_again(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream, "pt-admin")
    replace = sync_to_async(participant_message_send)
    await replace(participant_id="pt-dev", room_id=DIRECT, text="draft", message_id="pico-9")
    await replace(participant_id="pt-dev", room_id=DIRECT, text="final", message_id="pico-9")
    marker = await asend(DIRECT, "marker", sender="u-dev")

    first = await next_frame(stream)
    assert (first.id, first.data["text"]) == ("pico-9", "draft")
    assert (await next_frame(stream)).id == marker.message_id


# --- start cursor, catch-up and memory (§2.6) ---------------------------------------------------------


async def test_catch_up_on_first_connect_filters_old_answered_and_agent_messages(asgi_stream) -> None:
    await asend(DIRECT, "too old", age=timedelta(minutes=40))
    recent = await asend(DIRECT, "recent", age=timedelta(minutes=10))
    await asend(GROUP, "@dev answered", age=timedelta(minutes=8))
    await asend(GROUP, "my answer", sender="u-dev", age=timedelta(minutes=7))
    await asend(GROUP, "@dev from an agent", sender="u-bob", age=timedelta(minutes=5))

    stream = await open_stream(asgi_stream)

    assert (await next_frame(stream)).id == recent.message_id
    marker = await asend(DIRECT, "live")
    assert (await next_frame(stream)).id == marker.message_id


async def test_reconnect_without_cursor_repeats_nothing_but_gets_what_was_missed(asgi_stream) -> None:
    first = await asend(DIRECT, "first")
    stream = await open_stream(asgi_stream)
    assert (await next_frame(stream)).id == first.message_id
    await stream.disconnect()
    missed = await asend(DIRECT, "missed")

    again = await open_stream(asgi_stream, "u-dev")

    assert (await next_frame(again)).id == missed.message_id
    cursor = await sync_to_async(StreamCursor.objects.get)(kind=StreamCursorKind.PARTICIPANT, key="pt-dev")
    assert cursor.seq >= 1


async def test_remembered_cursor_of_any_age_is_used(asgi_stream) -> None:
    old = await asend(DIRECT, "old")
    newer = await asend(DIRECT, "newer")
    seq = await sync_to_async(lambda: event_seq(old))()
    await sync_to_async(StreamCursor.objects.create)(
        kind=StreamCursorKind.PARTICIPANT,
        key="pt-dev",
        seq=seq,
        updated_at=timezone.now() - timedelta(days=3),
    )

    stream = await open_stream(asgi_stream)

    assert (await next_frame(stream)).id == newer.message_id


@pytest.mark.parametrize("where", ["header", "query"])
async def test_last_event_id_message_id_skips_up_to_that_message(asgi_stream, where: str) -> None:
    first = await asend(DIRECT, "first")
    second = await asend(DIRECT, "second")
    if where == "header":
        stream = await open_stream(asgi_stream, headers={"Last-Event-ID": first.message_id})
    else:
        stream = await open_stream(asgi_stream, query={"last_event_id": first.message_id})

    assert (await next_frame(stream)).id == second.message_id


async def test_last_event_id_may_be_a_caller_chosen_message_id(asgi_stream) -> None:
    send_as = sync_to_async(participant_message_send)
    await send_as(participant_id="pt-admin", room_id=DIRECT, text="one", message_id="web-1")
    second = await asend(DIRECT, "two")

    stream = await open_stream(asgi_stream, headers={"Last-Event-ID": "web-1"})

    assert (await next_frame(stream)).id == second.message_id


async def test_a_cursor_above_the_newest_seq_counts_as_zero(asgi_stream) -> None:
    first = await asend(DIRECT, "first")

    stream = await open_stream(asgi_stream, headers={"Last-Event-ID": "999999999"})

    assert (await next_frame(stream)).id == first.message_id


# --- thread replies (§2.4) ------------------------------------------------------------------------------


def reply_in_group(text: str) -> tuple[Message, Message]:
    """A root in the group room and the admin's REST reply to it."""
    root = send(GROUP, "plan the release")
    reply = message_send(
        room_id=GROUP,
        sender_id=ADMIN_ID,
        content=text,
        relates_to={"rel_type": "m.thread", "event_id": root.message_id},
    ).message
    return root, reply


async def test_a_thread_reply_carries_its_root_and_context(asgi_stream) -> None:
    stream = await open_from_now(asgi_stream)
    root, reply = await sync_to_async(reply_in_group)("@dev on it")

    frame = await next_frame(stream)

    assert frame.id == reply.message_id
    data = frame.data
    assert list(data) == [
        *FRAME_KEYS[:-1],
        "mentions",
        "mentioned",
        "thread_root_id",
        "thread_context",
        "context",
    ]
    assert data["text"] == '<at user_id="pt-dev">dev</at> on it'
    assert data["thread_root_id"] == root.message_id
    context = data["thread_context"]
    assert list(context) == ["root_message_id", "context", "summary"]
    assert context["root_message_id"] == root.message_id
    assert [message["id"] for message in context["context"]][-1] == root.message_id
    assert context["summary"]["root_excerpt"] == "plan the release"
    assert list(data["context"]) == [
        "channel",
        "account",
        "chat_id",
        "chat_type",
        "topic_id",
        "sender_id",
        "message_id",
        "mentioned",
        "raw",
    ]
    assert data["context"]["topic_id"] == root.message_id
    assert data["context"]["raw"] == {"room_id": GROUP, "thread_root_id": root.message_id}
    bot_frame = await sync_to_async(lambda: Event.objects.get(message_id=reply.message_id).bot_payload)()
    assert list(bot_frame) == ["message_id", "room_id", "chat_id", "chat_type", "sender", "text", "timestamp"]


# --- attachments are copied off the event loop (threads-attachments.md §2.6) -------------------------


def logged(participant_payload: dict[str, Any]) -> LoggedEvent:
    return LoggedEvent(seq=1, payload={}, bot_payload=None, participant_payload=participant_payload)


@pytest.mark.parametrize(
    ("payload", "copies"),
    [
        ({"text": "hi"}, False),
        ({"attachments": []}, False),
        ({"attachments": [{"id": "att-1"}]}, True),
        ({"thread_context": {"root_message_id": "msg-1", "summary": {}}}, False),
        ({"thread_context": {"context": [{"id": "msg-1"}]}}, False),
        ({"thread_context": {"context": [{"id": "msg-1", "attachments": [{"id": "att-1"}]}]}}, True),
    ],
)
def test_only_frames_with_attachments_are_rendered_on_a_thread(payload, copies) -> None:
    assert frame_copies_files(logged(payload)) is copies


def send_with_attachment_frame(text: str) -> Message:
    """A message whose stored participant frame lists an attachment (the copy itself is stubbed)."""
    message = send(DIRECT, text)
    event = Event.objects.get(message_id=message.message_id)
    event.participant_payload = {
        **event.participant_payload,
        "attachments": [{"id": "att-1", "name": "a.txt"}],
    }
    event.save(update_fields=["participant_payload"])
    return message


async def test_attachment_copies_run_off_the_event_loop(asgi_stream, monkeypatch) -> None:
    copying_threads = []

    def record_copy(attachments, **_where):
        copying_threads.append(threading.get_ident())
        return attachments

    monkeypatch.setattr(participant_stream, "with_workspace_paths", record_copy)
    with_file = await sync_to_async(send_with_attachment_frame)("see the file")
    plain = await asend(DIRECT, "and a plain one")

    stream = await open_stream(asgi_stream)
    frames = [await next_frame(stream), await next_frame(stream)]

    assert [frame.id for frame in frames] == [with_file.message_id, plain.message_id]
    assert frames[0].data["attachments"] == [{"id": "att-1", "name": "a.txt"}]
    assert "attachments" not in frames[1].data
    assert len(copying_threads) == 1 and copying_threads[0] != threading.get_ident()
