"""The event stream connection (builtin-runtime.md §3.2–3.3): route choice, connect, backoff, idle timeout."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from agent_runtime.contracts import Settings, join_url
from agent_runtime.journal import Cursor
from agent_runtime.sse import SseParser, decode_message

log = logging.getLogger("agent_runtime.channel")

# PicoClaw `runEventLoop`: 1 s doubling to 30 s; ±20 % jitter spreads out agents restarted together.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
JITTER = (0.8, 1.2)
# A stream that lived this long ended normally (the server's lifetime cap): reconnect at once, backoff reset.
HEALTHY_STREAM_SECONDS = 60.0
ERROR_BODY_BYTES = 4096
CONNECT_TIMEOUT = httpx.Timeout(10.0, read=None)

FrameHandler = Callable[[dict[str, Any], str, str], Awaitable[None]]


class StreamRejected(Exception):
    """The server answered, but not with an event stream; carries the status for the mode fallback."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class EventStream:
    """Keeps one stream open. `on_frame(payload, sse_id, mode)` runs for every message frame, in order;
    `on_connected(mode)` and `on_disconnected(reason)` bracket each connection; `on_failed(reason)` reports
    an attempt that never connected."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        cursor: Cursor,
        *,
        on_frame: FrameHandler,
        on_connected: Callable[[str], Awaitable[None]],
        on_disconnected: Callable[[str], Awaitable[None]],
        on_failed: Callable[[str], None] = lambda reason: None,
        sleep=asyncio.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        clock=time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cursor = cursor
        self._on_frame = on_frame
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_failed = on_failed
        self._connections = 0
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self.mode = ""
        self.connected = False

    async def run(self) -> None:
        """Until cancelled: connect, read, and on any end wait out the backoff (§3.3)."""
        backoff = FIRST_BACKOFF
        while True:
            started = self._clock()
            connections = self._connections
            try:
                reason = await self._attempt()
            except Exception as exc:
                # A bug on one connection must not end the runtime; it counts as a failed attempt.
                log.exception("stream attempt failed")
                reason = f"{type(exc).__name__}: {exc}"
            lasted = self._clock() - started
            if self._connections == connections:
                self._on_failed(reason)
            if lasted >= HEALTHY_STREAM_SECONDS:
                backoff = FIRST_BACKOFF
                log.info("stream ended after %.0f s (%s); reconnecting now", lasted, reason)
                continue
            delay = backoff * self._jitter(*JITTER)
            log.info("stream down (%s); reconnecting in %.2f s", reason, delay * self.settings.backoff_scale)
            await self._sleep(delay * self.settings.backoff_scale)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _attempt(self) -> str:
        """One connection attempt and, when it connects, the whole stream; returns why it ended."""
        modes = ["bot"] if self.settings.stream_mode == "bot" else ["participant"]
        if self.settings.stream_mode == "auto":
            modes.append("bot")
        for mode in modes:
            url = self._url(mode)
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            last_event_id = self.cursor.last_event_id(mode)
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            request = self.client.build_request("GET", url, headers=headers, timeout=CONNECT_TIMEOUT)
            try:
                response = await self.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                return f"connect failed: {type(exc).__name__}: {exc}"
            try:
                try:
                    await self._check(response)
                except StreamRejected as exc:
                    if exc.status == 404 and mode == "participant" and "bot" in modes:
                        log.info("participant stream not found (404); falling back to the bot stream")
                        continue
                    return str(exc)
                return await self._consume(response, mode, url)
            finally:
                await response.aclose()
        return "no stream route"

    async def _check(self, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type", "")
        if response.status_code == 200 and "text/event-stream" in content_type:
            return
        body = b""
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= ERROR_BODY_BYTES:
                    break
        except httpx.HTTPError as exc:
            body += f" ({type(exc).__name__})".encode()
        detail = body[:ERROR_BODY_BYTES].decode("utf-8", "replace").strip()
        log.warning("stream refused: HTTP %s %s: %s", response.status_code, content_type, detail)
        raise StreamRejected(response.status_code, f"HTTP {response.status_code}")

    async def _consume(self, response: httpx.Response, mode: str, url: str) -> str:
        self.mode, self.connected = mode, True
        self._connections += 1
        log.info("stream connected mode=%s url=%s", mode, url)
        reason = "stream ended"
        try:
            await self._on_connected(mode)
            reason = await self._read(response, mode)
        except httpx.HTTPError as exc:
            reason = f"read failed: {type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            self.connected = False
            log.info("stream disconnected mode=%s reason=%s", mode, reason)
            await asyncio.shield(self._on_disconnected(reason))
        return reason

    async def _read(self, response: httpx.Response, mode: str) -> str:
        parser = SseParser()
        idle = self.settings.stream_idle_timeout
        chunks = response.aiter_bytes()
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return "stream ended"
            except TimeoutError:
                return f"idle for {idle:g} s"
            for frame in parser.feed(chunk):
                payload, dropped = decode_message(frame)
                if payload is None:
                    log.debug("frame dropped: %s id=%s", dropped, frame.id)
                    continue
                await self._on_frame(payload, frame.id, mode)

    def _url(self, mode: str) -> str:
        settings = self.settings
        if mode == "participant":
            return join_url(
                settings.base_url, f"/api/v1/channels/csgclaw/participants/{settings.participant_id}/events"
            )
        return join_url(settings.base_url, f"/api/bots/{settings.bot_id}/events")
