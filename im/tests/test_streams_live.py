"""The IM stream end to end: a live Daphne subprocess, real sockets, httpx and httpx-sse (events.md §7)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from httpx_sse import aconnect_sse

from csgclaw_site.testing.live import next_sse_event
from im.identity import ADMIN_ID

# The server's start-up has its own bounds in the fixture; this one is for the stream itself.
pytestmark = [pytest.mark.live, pytest.mark.timeout(20, func_only=True)]

IM_PATH = "/api/v1/im/events"
ALIAS_PATH = "/api/v1/events"


async def bootstrap(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """The seed room's id, and the web UI's way to open a stream without missing what comes next."""
    state = (await client.get("/api/v1/im/bootstrap")).json()
    return state["rooms"][0]["id"], {"Last-Event-ID": str(state["last_event_id"])}


async def send(client: httpx.AsyncClient, room_id: str, content: str) -> dict:
    response = await client.post(
        "/api/v1/im/messages", json={"room_id": room_id, "sender_id": ADMIN_ID, "content": content}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def next_event(events) -> object:
    return await next_sse_event(events)


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(daphne_server):
    async with daphne_server.client() as client:
        room_id, resume = await bootstrap(client)
        async with aconnect_sse(client, "GET", IM_PATH, headers=resume) as source:
            events = source.aiter_sse()
            await send(client, room_id, "before the disconnect")
            seen = await next_event(events)
        assert json.loads(seen.data)["message"]["content"] == "before the disconnect"

        missed = [await send(client, room_id, f"missed {n}") for n in range(5)]
        async with aconnect_sse(client, "GET", IM_PATH, headers={"Last-Event-ID": seen.id}) as source:
            events = source.aiter_sse()
            replayed = [await next_event(events) for _ in missed]
            live = await send(client, room_id, "after the reconnect")
            following = await next_event(events)

    assert [json.loads(event.data)["message"] for event in replayed] == missed
    assert all(event.event == "message" and event.retry is None for event in replayed)
    ids = [int(event.id) for event in replayed]
    assert ids == sorted(ids) and ids[0] > int(seen.id)
    assert json.loads(following.data)["message"] == live


async def test_raw_lines_start_with_connected_then_ping(daphne_server):
    async with daphne_server.client() as client, client.stream("GET", IM_PATH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in response.headers
        lines = response.aiter_lines()
        first_lines = [await asyncio.wait_for(anext(lines), 5) for _ in range(4)]

    assert first_lines == [": connected", "", ": ping", ""]


async def test_frames_on_the_wire_are_id_and_one_data_line(daphne_server):
    async with daphne_server.client() as client:
        room_id, resume = await bootstrap(client)
        async with client.stream("GET", IM_PATH, headers=resume) as response:
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"
            message = await send(client, room_id, "ünïcode ✓")
            frame = []
            while not frame or frame[-1] != "":
                line = await asyncio.wait_for(anext(lines), 5)
                if frame or line.startswith("id: "):
                    frame.append(line)

    assert len(frame) == 3
    assert frame[0].removeprefix("id: ").isdigit()
    assert frame[1].startswith('data: {"type":"message.created","room_id":')
    assert "ünïcode ✓" in frame[1]
    assert json.loads(frame[1].removeprefix("data: "))["message"] == message


@pytest.fixture
def short_lived_streams_server(daphne_factory):
    return daphne_factory(sse_lifetime=1)


async def test_lifetime_cap_ends_the_response(short_lived_streams_server):
    loop = asyncio.get_running_loop()
    async with short_lived_streams_server.client() as client, client.stream("GET", IM_PATH) as response:
        opened = loop.time()
        lines = [line async for line in response.aiter_lines()]
        lasted = loop.time() - opened

    assert lines[:2] == [": connected", ""]
    assert set(lines[2:]) <= {": ping", ""}
    assert 0.8 <= lasted < 8


async def test_alias_path_streams_the_same_events(daphne_server):
    async with daphne_server.client() as client:
        room_id, resume = await bootstrap(client)
        async with aconnect_sse(client, "GET", ALIAS_PATH, headers=resume) as source:
            assert source.response.headers["content-type"] == "text/event-stream"
            events = source.aiter_sse()
            message = await send(client, room_id, "through the alias")
            received = await next_event(events)

    assert json.loads(received.data)["message"] == message


@pytest.mark.parametrize("path", [IM_PATH, ALIAS_PATH])
async def test_post_is_method_not_allowed(daphne_server, path):
    async with daphne_server.client() as client:
        response = await client.post(path)

    assert response.status_code == 405
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "method not allowed\n"


async def test_a_write_from_another_process_reaches_the_stream(daphne_server):
    """No Redis: the doorbell cannot cross processes, so the poll interval delivers (events.md §5.4)."""
    async with daphne_server.client() as client:
        room_id, resume = await bootstrap(client)
        async with aconnect_sse(client, "GET", IM_PATH, headers=resume) as source:
            events = source.aiter_sse()
            await asyncio.to_thread(
                daphne_server.manage,
                "shell",
                "-c",
                "from im.services import message_send; "
                f"message_send(room_id={room_id!r}, sender_id={ADMIN_ID!r}, content='from another process')",
            )
            received = await next_event(events)

    assert json.loads(received.data)["message"]["content"] == "from another process"
