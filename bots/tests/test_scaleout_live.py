"""Scale-out end to end (README "Scaling out", events.md §5.3–5.4): two Daphne processes, one PostgreSQL
database, Redis for the doorbell.

A subscriber on process A (the IM stream and a bot stream) receives every message posted concurrently to
process B, once and in commit order; and with the Redis doorbell a message reaches A far sooner than the
poll interval could explain. The tests create (and drop) their own PostgreSQL database on 127.0.0.1:5432
and use Redis on 127.0.0.1:6379; they skip, saying why, only when one of the two is not reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

TOKEN = "scaleout-live-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_ID = "u-admin"
MANAGER_ID = "u-manager"

MESSAGES = 200
CLIENT_TASKS = 8
DELIVERY_SECONDS = 90.0
# Long enough that no stream of these tests ends on its lifetime cap mid-test.
STREAM_LIFETIME_SECONDS = "300"
# The latency test: only the doorbell can wake a stream within these (a heartbeat also re-reads the log).
SLOW_POLL_SECONDS = 5.0
SLOW_HEARTBEAT_SECONDS = "60"
LATENCY_SAMPLES = 5
# "Well under the poll interval": a fifth of it. Without the doorbell each probe waits out the whole
# interval, because it is posted right after the stream's previous read (measured: 5.0 s each with Redis
# left out of the servers' environment).
LATENCY_LIMIT_SECONDS = SLOW_POLL_SECONDS / 5


@pytest.fixture
def two_servers(postgres_url, redis_url, live_state_factory, daphne_factory) -> Callable[..., tuple]:
    """`two_servers(**env)`: processes A and B on one migrated PostgreSQL database and one Redis.

    The database comes first in the arguments, so it is created before the servers start and dropped
    only after they have stopped.
    """

    def start(**extra_env: str):
        # Migrates the PostgreSQL database once, before either server starts.
        state = live_state_factory(extra_env={"DATABASE_URL": postgres_url, "REDIS_URL": redis_url})
        (state.home / "config.toml").write_text(f'[server]\naccess_token = "{TOKEN}"\n')
        env = {"CSGCLAW_SSE_MAX_LIFETIME": STREAM_LIFETIME_SECONDS, **extra_env}
        return daphne_factory(state=state, extra_env=env), daphne_factory(state=state, extra_env=env)

    return start


# --- reading streams ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    id: int
    event: str
    data: dict
    received_at: float


@dataclass
class StreamReader:
    """One SSE response read in a background task, keeping every frame with the time it arrived."""

    frames: list[Frame] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, response: httpx.Response) -> None:
        assert response.status_code == 200, await response.aread()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == ": connected":
                self.connected.set()
            elif line.startswith(":"):
                continue
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif "data" in fields:
                frame = Frame(
                    int(fields["id"]), fields.get("event", ""), json.loads(fields["data"]), time.monotonic()
                )
                self.frames.append(frame)
                self.arrived.set()
                fields = {}

    async def wait_for(self, count: int, timeout: float) -> list[Frame]:
        """The first `count` frames; fails the test with what arrived if they do not come in time."""
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{len(self.frames)} of {count} frames arrived within {timeout:g}s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.frames[:count]


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, path: str, **kwargs) -> AsyncIterator[StreamReader]:
    reader = StreamReader()
    async with client.stream("GET", path, **kwargs) as response:
        task = asyncio.create_task(reader.read(response))
        try:
            await asyncio.wait_for(reader.connected.wait(), 15)
            yield reader
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


async def admin_manager_room(client: httpx.AsyncClient) -> tuple[str, int]:
    """The seeded admin↔manager direct room and the newest event seq, from the bootstrap."""
    bootstrap = (await client.get("/api/v1/im/bootstrap")).json()
    [room] = [room for room in bootstrap["rooms"] if set(room["members"]) == {ADMIN_ID, MANAGER_ID}]
    return room["id"], bootstrap["last_event_id"]


async def post_message(client: httpx.AsyncClient, room_id: str, content: str) -> str:
    response = await client.post(
        "/api/v1/messages", json={"room_id": room_id, "sender_id": ADMIN_ID, "content": content}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def stored_message_count(database_url: str, content_pattern: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as connection:
        query = "SELECT count(*) FROM im_message WHERE content LIKE %s"
        return connection.execute(query, [content_pattern]).fetchone()[0]


# --- tests -------------------------------------------------------------------------------------------------


async def test_messages_posted_to_one_process_reach_streams_on_the_other_in_order(two_servers, postgres_url):
    server_a, server_b = two_servers()
    async with server_a.client(timeout=httpx.Timeout(30.0)) as client_a, server_b.client() as client_b:
        room_id, cursor = await admin_manager_room(client_a)
        # An explicit cursor: the streams start exactly there, however fast the posts follow.
        query = {"last_event_id": str(cursor)}
        async with (
            open_stream(client_a, "/api/v1/im/events", params=query) as im_stream,
            open_stream(client_a, f"/api/bots/{MANAGER_ID}/events", params=query, headers=AUTH) as bot_stream,
        ):

            async def sender(task: int) -> list[tuple[str, str]]:
                sent = []
                for number in range(MESSAGES // CLIENT_TASKS):
                    content = f"task {task} message {number}"
                    sent.append((await post_message(client_b, room_id, content), content))
                return sent

            per_task = await asyncio.gather(*(sender(task) for task in range(CLIENT_TASKS)))
            im_frames = await im_stream.wait_for(MESSAGES, DELIVERY_SECONDS)
            bot_frames = await bot_stream.wait_for(MESSAGES, DELIVERY_SECONDS)
            # Anything beyond the 200 would be a duplicate: give it a moment to show up.
            await asyncio.sleep(0.5)

    posted = {message_id for sent in per_task for message_id, _ in sent}
    assert len(posted) == MESSAGES
    assert len(im_stream.frames) == len(bot_stream.frames) == MESSAGES

    assert {frame.data["type"] for frame in im_frames} == {"message.created"}
    im_ids = [frame.data["message"]["id"] for frame in im_frames]
    assert set(im_ids) == posted
    seqs = [frame.id for frame in im_frames]
    assert seqs == sorted(set(seqs)), "frames must come once each, in seq order"
    # Each task posted one message after the other, so commit order keeps each task's own order.
    position = {message_id: index for index, message_id in enumerate(im_ids)}
    for sent in per_task:
        assert [position[message_id] for message_id, _ in sent] == sorted(position[m] for m, _ in sent)
    contents = {frame.data["message"]["id"]: frame.data["message"]["content"] for frame in im_frames}
    assert all(contents[message_id] == content for sent in per_task for message_id, content in sent)

    # The bot stream is the same log filtered for u-manager: the same events, the same order.
    assert {frame.event for frame in bot_frames} == {"message"}
    assert [frame.id for frame in bot_frames] == seqs
    assert [frame.data["message_id"] for frame in bot_frames] == im_ids
    assert {frame.data["chat_type"] for frame in bot_frames} == {"direct"}
    # And the shared database really is PostgreSQL.
    assert stored_message_count(postgres_url, "task %") == MESSAGES


async def test_the_redis_doorbell_wakes_the_other_process_well_before_the_poll(two_servers):
    server_a, server_b = two_servers(
        CSGCLAW_SSE_POLL_INTERVAL=str(SLOW_POLL_SECONDS), CSGCLAW_SSE_HEARTBEAT=SLOW_HEARTBEAT_SECONDS
    )
    async with server_a.client() as client_a, server_b.client() as client_b:
        room_id, cursor = await admin_manager_room(client_a)
        async with open_stream(
            client_a, "/api/v1/im/events", params={"last_event_id": str(cursor)}
        ) as stream:
            # A's Redis listener subscribes in the background when the stream opens; the first message
            # may still arrive by polling, so it only proves the pipe works end to end.
            await post_message(client_b, room_id, "warm-up")
            await stream.wait_for(1, SLOW_POLL_SECONDS * 3)
            latencies = []
            for number in range(LATENCY_SAMPLES):
                sent_at = time.monotonic()
                message_id = await post_message(client_b, room_id, f"latency probe {number}")
                [*_, frame] = await stream.wait_for(number + 2, SLOW_POLL_SECONDS * 3)
                assert frame.data["message"]["id"] == message_id
                latencies.append(frame.received_at - sent_at)

    print("cross-process delivery latencies (s):", ", ".join(f"{latency:.3f}" for latency in latencies))
    assert max(latencies) < LATENCY_LIMIT_SECONDS, latencies
