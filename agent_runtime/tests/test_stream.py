"""Stream route choice, connect checks, backoff, cursor header and idle timeout (spec §3.2–3.3)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agent_runtime.journal import Cursor
from agent_runtime.stream import EventStream
from agent_runtime.tests.channel_fakes import (
    ScriptedServer,
    frame,
    make_settings,
    sse_message,
    stream_response,
)

PARTICIPANT = "/api/v1/channels/csgclaw/participants/pt-dev/events"
BOT = "/api/bots/u-dev/events"


class Stop(Exception):
    """Ends `run()` from the fake sleep after the wanted number of attempts."""


class Harness:
    def __init__(self, tmp_path, server, *, attempts=1, clock=None, **overrides):
        self.settings = make_settings(tmp_path, **overrides)
        self.cursor = Cursor(self.settings)
        self.frames: list[tuple[dict, str, str]] = []
        self.events: list[str] = []
        self.delays: list[float] = []
        self.attempts = attempts
        client = httpx.AsyncClient(transport=server.transport)
        self.stream = EventStream(
            self.settings,
            client,
            self.cursor,
            on_frame=self.on_frame,
            on_connected=self.on_connected,
            on_disconnected=self.on_disconnected,
            sleep=self.sleep,
            jitter=lambda low, high: 1.0,
            **({"clock": clock} if clock else {}),
        )

    async def on_frame(self, payload, sse_id, mode):
        self.frames.append((payload, sse_id, mode))
        self.cursor.advance(message_id=payload["message_id"], sse_id=sse_id, stream=mode)

    async def on_connected(self, mode):
        self.events.append(f"connected {mode}")

    async def on_disconnected(self, reason):
        self.events.append(f"disconnected {reason}")

    async def sleep(self, delay):
        self.delays.append(round(delay / self.settings.backoff_scale, 6))
        if len(self.delays) >= self.attempts:
            raise Stop

    async def run(self):
        with pytest.raises(Stop):
            await self.stream.run()


async def test_auto_falls_back_to_the_bot_stream_on_404_in_the_same_attempt(tmp_path):
    server = ScriptedServer()
    server.queue("GET", BOT, stream_response([sse_message(frame("msg-1"), "57")]))
    harness = Harness(tmp_path, server)
    await harness.run()
    assert [r.url.path for r in server.requests] == [PARTICIPANT, BOT]
    assert harness.frames == [(frame("msg-1"), "57", "bot")]
    assert harness.events == ["connected bot", "disconnected stream ended"]
    assert server.requests[1].headers["Accept"] == "text/event-stream"
    assert server.requests[1].headers["Cache-Control"] == "no-cache"
    assert "Last-Event-ID" not in server.requests[1].headers


async def test_401_is_a_failed_attempt_without_fallback(tmp_path, caplog):
    server = ScriptedServer()
    server.always("GET", PARTICIPANT, httpx.Response(401, text="unauthorized\n"))
    harness = Harness(tmp_path, server, attempts=2)
    await harness.run()
    assert [r.url.path for r in server.requests] == [PARTICIPANT, PARTICIPANT]
    assert harness.delays == [1.0, 2.0]
    assert "HTTP 401" in caplog.text and "unauthorized" in caplog.text


async def test_html_200_is_not_a_stream(tmp_path):
    server = ScriptedServer()
    server.always("GET", PARTICIPANT, httpx.Response(200, html="<html>login</html>"))
    harness = Harness(tmp_path, server)
    await harness.run()
    assert harness.events == []
    assert harness.stream.connected is False


async def test_backoff_doubles_to_thirty_seconds_with_jitter(tmp_path):
    server = ScriptedServer()
    server.always("GET", PARTICIPANT, httpx.ConnectError("refused"))
    harness = Harness(tmp_path, server, attempts=8, stream_mode="participant")
    await harness.run()
    assert harness.delays == [1, 2, 4, 8, 16, 30, 30, 30]
    jittered = Harness(tmp_path, server, attempts=1, stream_mode="participant")
    jittered.stream._jitter = lambda low, high: high
    await jittered.run()
    assert jittered.delays == [1.2]


async def test_a_stream_that_lived_sixty_seconds_reconnects_at_once_with_backoff_reset(tmp_path):
    now = [0.0]
    server = ScriptedServer()
    server.queue("GET", PARTICIPANT, httpx.ConnectError("refused"), httpx.ConnectError("refused"))

    def long_stream(request):
        now[0] += 61
        return stream_response([])

    server.queue("GET", PARTICIPANT, long_stream)
    server.always("GET", PARTICIPANT, httpx.ConnectError("refused"))
    harness = Harness(tmp_path, server, attempts=3, clock=lambda: now[0], stream_mode="participant")
    await harness.run()
    # Two failures (1, 2), the long stream (no wait), then the reset backoff starts at 1 again.
    assert harness.delays == [1, 2, 1]
    assert len(server.requests) == 4


async def test_last_event_id_per_mode(tmp_path):
    server = ScriptedServer()
    server.always("GET", PARTICIPANT, stream_response([]))
    harness = Harness(tmp_path, server, stream_mode="participant")
    harness.cursor.advance(message_id="msg-5", sse_id="42", stream="bot")
    await harness.run()
    assert server.requests[0].headers["Last-Event-ID"] == "msg-5"
    server = ScriptedServer()
    server.always("GET", BOT, stream_response([]))
    harness = Harness(tmp_path, server, stream_mode="bot")
    harness.cursor.advance(message_id="msg-5", sse_id="42", stream="bot")
    await harness.run()
    assert server.requests[0].headers["Last-Event-ID"] == "42"


async def test_bot_mode_resumes_from_a_message_id_without_seq(tmp_path):
    server = ScriptedServer()
    server.always("GET", BOT, stream_response([]))
    harness = Harness(tmp_path, server, stream_mode="bot")
    harness.cursor.advance(message_id="msg-5", sse_id="msg-5", stream="participant")
    await harness.run()
    assert server.requests[0].headers["Last-Event-ID"] == "msg-5"


@pytest.mark.timeout(10)
async def test_idle_stream_is_closed_and_reconnected(tmp_path):
    server = ScriptedServer()
    bodies = []

    def held(request):
        response = stream_response([sse_message(frame("msg-1"), "msg-1")], hold=True)
        bodies.append(response.stream)
        return response

    server.always("GET", PARTICIPANT, held)
    harness = Harness(tmp_path, server, attempts=2, stream_idle_timeout=0.2)
    await harness.run()
    assert harness.events == ["connected participant", "disconnected idle for 0.2 s"] * 2
    assert len(server.requests) == 2
    assert all(body.release.is_set() for body in bodies)


@pytest.mark.timeout(10)
async def test_cancel_while_connected_reports_the_disconnect(tmp_path):
    server = ScriptedServer()
    server.always("GET", PARTICIPANT, lambda request: stream_response([], hold=True))
    harness = Harness(tmp_path, server)
    task = asyncio.create_task(harness.stream.run())
    while not harness.stream.connected:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert harness.events == ["connected participant", "disconnected stopped"]
    assert harness.stream.connected is False
