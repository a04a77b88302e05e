"""Slow readers on a live Daphne (security.md S7): stalled streams are closed, memory comes back, resuming
loses nothing, and a process serves at most CSGCLAW_SSE_MAX_STREAMS streams.

A stalled reader is a raw socket with a small receive buffer that sends its GET and then reads nothing.
Memory is VmRSS of the server process (/proc/<pid>/status).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from contextlib import AsyncExitStack

import httpx
import pytest

from csgclaw_site.tests.proc_memory import rss_bytes
from im.identity import ADMIN_ID

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

IM_PATH = "/api/v1/im/events"
MIB = 1024 * 1024
MESSAGE_BYTES = MIB // 2
FLOW_MESSAGES = 100  # 50 MiB of message content, each frame carrying one
WARM_UP_MESSAGES = 40
STALLED_STREAMS = 3
MEMORY_SLACK_BYTES = 20 * MIB
# The server gives a stream STALLED_SECONDS (10 s) to make room; this bounds the whole wait.
CLOSE_SECONDS = 45.0
CLOSED_LOG_LINE = "its client stopped reading"


async def read_everything(server) -> None:
    async with (
        server.client(timeout=httpx.Timeout(60.0)) as client,
        client.stream("GET", IM_PATH, headers={"Last-Event-ID": "0"}) as response,
    ):
        await response.aread()


async def wait_for_log(server, text: str, *, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, f"{server.log().count(text)} of {count} {text!r} in the log"
        await asyncio.sleep(0.2)


def stalled_stream(port: int, cursor: int) -> socket.socket:
    """An IM stream from `cursor` whose client stops reading once the stream has started."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {IM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: {cursor}\r\n\r\n".encode("ascii")
    )
    received = b""
    while b": connected\n\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, "stream ended before it started"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    return sock


def drain_until_closed(sock: socket.socket, *, seconds: float) -> bytes:
    """Everything the server still sends, up to its close (EOF or reset); fails if it keeps the stream."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return received
                received += chunk
        except ConnectionResetError:
            return received
    raise AssertionError(f"the server kept a stalled stream open ({len(received)} bytes read)")


def frame_ids(raw: bytes) -> list[int]:
    """Ids of the complete `message.created` frames in a raw stream (a cut-off last frame is no frame)."""
    ids = []
    for block in raw.split(b"\n\n")[:-1]:
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if line.startswith((b"id", b"data")))
        if b"data" in lines and json.loads(lines[b"data"])["type"] == "message.created":
            ids.append(int(lines[b"id"]))
    return ids


async def post_messages(client: httpx.AsyncClient, room_id: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        content = f"{n:04d}" + "x" * (MESSAGE_BYTES - 4)
        response = await client.post(
            "/api/v1/im/messages", json={"room_id": room_id, "sender_id": ADMIN_ID, "content": content}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def resumed_message_ids(client: httpx.AsyncClient, cursor: int, wanted: int) -> list[tuple[int, str]]:
    """(seq, message id) of the first `wanted` messages after `cursor`, read with Last-Event-ID."""
    found: list[tuple[int, str]] = []
    async with client.stream("GET", IM_PATH, headers={"Last-Event-ID": str(cursor)}) as response:
        frame: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                frame[name] = value
                continue
            if "data" in frame and json.loads(frame["data"])["type"] == "message.created":
                found.append((int(frame["id"]), json.loads(frame["data"])["message"]["id"]))
                if len(found) == wanted:
                    return found
            frame = {}
    raise AssertionError(f"the resumed stream ended after {len(found)} of {wanted} messages")


async def test_stalled_streams_are_closed_memory_returns_and_resuming_loses_nothing(daphne_factory):
    server = daphne_factory(sse_lifetime=600)
    pid = server.process.pid
    async with server.client(timeout=httpx.Timeout(60.0)) as client:
        state = (await client.get("/api/v1/im/bootstrap")).json()
        room_id = state["rooms"][0]["id"]
        # Big messages through reading streams first: what the process keeps anyway for them (the log
        # tail, SQLite's cache, the allocator's per-thread arenas) is in the baseline, not counted against
        # the slow readers. Measured: three readers of this flow alone leave about 55 MiB behind.
        readers = [asyncio.ensure_future(read_everything(server)) for _ in range(STALLED_STREAMS)]
        await asyncio.sleep(0.5)
        await post_messages(client, room_id, WARM_UP_MESSAGES)
        await asyncio.sleep(2)
        for reader in readers:
            reader.cancel()
        cursor = int((await client.get("/api/v1/im/bootstrap")).json()["last_event_id"])
        await asyncio.sleep(1)
        baseline = rss_bytes(pid)

        stalled = [stalled_stream(server.port, cursor) for _ in range(STALLED_STREAMS)]
        posted = await post_messages(client, room_id, FLOW_MESSAGES)
        # Reading now would make them readers again: first the server must give up on them.
        await wait_for_log(server, CLOSED_LOG_LINE, count=STALLED_STREAMS, seconds=CLOSE_SECONDS)
        leftovers = [
            await asyncio.to_thread(drain_until_closed, sock, seconds=CLOSE_SECONDS) for sock in stalled
        ]
        for sock in stalled:
            sock.close()
        await asyncio.sleep(2)
        after = rss_bytes(pid)

        first = frame_ids(leftovers[0])
        resume_from = first[-1] if first else cursor
        resumed = await resumed_message_ids(client, resume_from, FLOW_MESSAGES - len(first))

    assert after - baseline < MEMORY_SLACK_BYTES, (
        f"server memory {baseline / MIB:.0f} MiB before the slow readers, {after / MIB:.0f} MiB after"
    )
    # Each stalled stream got only part of the flow before the server closed it.
    assert all(len(frame_ids(raw)) < FLOW_MESSAGES for raw in leftovers)
    assert [message_id for _, message_id in resumed] == posted[len(first) :]
    assert server.log().count(CLOSED_LOG_LINE) == STALLED_STREAMS


async def open_stream(client: httpx.AsyncClient, stack: AsyncExitStack, held: list) -> int:
    """Opens an IM stream kept open by `stack`; its status. The line iterator is kept in `held`: once
    collected, httpx would close the response."""
    response = await stack.enter_async_context(client.stream("GET", IM_PATH))
    if response.status_code == 200:
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        held.append(lines)
    return response.status_code


async def test_one_stream_more_than_the_cap_is_503_until_one_closes(daphne_factory):
    server = daphne_factory(extra_env={"CSGCLAW_SSE_MAX_STREAMS": "3"})
    held: list = []
    async with server.client() as client, AsyncExitStack() as stack:
        first = AsyncExitStack()
        statuses = [await open_stream(client, first, held)]
        statuses += [await open_stream(client, stack, held) for _ in range(2)]
        assert statuses == [200, 200, 200]

        refused = await client.get(IM_PATH)
        assert (refused.status_code, refused.text) == (503, "too many open streams\n")
        assert refused.headers["retry-after"] == "5"
        # Other routes are not streams: they still answer.
        assert (await client.get("/api/v1/rooms")).status_code == 200

        await first.aclose()
        deadline = time.monotonic() + 5
        while (status := await open_stream(client, stack, held)) != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert status == 200
