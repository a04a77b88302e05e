"""Sending into rooms (builtin-runtime.md §3.6): deterministic ids, the route of the stream mode, retries."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable

import httpx

from agent_runtime.contracts import OutboundFile, SendResult, Settings, join_url

log = logging.getLogger("agent_runtime.channel")

MAX_TEXT = 60_000
TRUNCATED_SUFFIX = "\n… (truncated)"
SEND_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# PicoClaw's retry classes, longer: a server restart takes seconds, and the ids make every retry safe.
RATE_LIMIT_DELAY = 1.0
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_BUDGET = 120.0
_ERROR_BODY_CHARS = 300


def outbound_id(bot_id: str, turn_id: str, room_id: str, thread_root_id: str, index: int) -> str:
    """`msg-rt-` + 24 hex digits of sha256 over BOT, turn, room, thread and the per-(room, thread) index."""
    digest = hashlib.sha256(f"{bot_id}\n{turn_id}\n{room_id}\n{thread_root_id}\n{index}".encode()).hexdigest()
    return "msg-rt-" + digest[:24]


def prepare_text(text: str) -> str:
    text = text.strip()
    return text[:MAX_TEXT] + TRUNCATED_SUFFIX if len(text) > MAX_TEXT else text


class HttpOutbox:
    """Implements `Outbox`. `mode()` is the stream's mode: `participant`, `bot`, or '' before any connect."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        mode: Callable[[], str],
        sleep=asyncio.sleep,
        clock=time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self._mode = mode
        self._sleep = sleep
        self._clock = clock
        self._participant_missing = False

    def message_id(self, *, turn_id: str, room_id: str, thread_root_id: str, index: int) -> str:
        return outbound_id(self.settings.bot_id, turn_id, room_id, thread_root_id, index)

    async def send(
        self,
        *,
        message_id: str,
        room_id: str,
        thread_root_id: str,
        text: str,
        file: OutboundFile | None = None,
    ) -> SendResult:
        text = prepare_text(text)
        if not text and file is None:
            return SendResult(message_id=message_id, ok=True)
        scale = self.settings.backoff_scale
        deadline = self._clock() + RETRY_BUDGET * scale
        failures = 0
        while True:
            route = self._route()
            try:
                response = await self._post(route, message_id, room_id, thread_root_id, text, file)
            except OSError as exc:
                # The file went away or became unreadable after the tool checked it: retrying cannot help.
                log.error("send failed: %s (room=%s id=%s)", exc, room_id, message_id)
                error = f"cannot read the file: {exc.strerror or exc}"
                return SendResult(message_id=message_id, ok=False, error=error)
            except httpx.HTTPError as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
            else:
                status, error = response.status_code, response.text[:_ERROR_BODY_CHARS].strip()
                if status == 404 and route == "participant" and self._falls_back():
                    # A server without participant routes (§3.2 step 1); the bot route serves the same rooms.
                    self._participant_missing = True
                    continue
                if 200 <= status < 300:
                    log.info("sent room=%s id=%s status=%s retries=%s", room_id, message_id, status, failures)
                    return SendResult(message_id=stored_id(response, message_id), ok=True)
                if status != 429 and status < 500:
                    log.error("send failed: %s %s (room=%s id=%s)", status, error, room_id, message_id)
                    return SendResult(message_id=message_id, ok=False, error=f"{status} {error}")
            delay = (
                RATE_LIMIT_DELAY if status == 429 else min(FIRST_RETRY_DELAY * 2**failures, MAX_RETRY_DELAY)
            )
            failures += 1
            if self._clock() + delay * scale > deadline:
                log.error(
                    "send failed: %s %s (room=%s id=%s, gave up)",
                    status or "error",
                    error,
                    room_id,
                    message_id,
                )
                return SendResult(message_id=message_id, ok=False, error=f"{status or 'error'} {error}")
            log.warning(
                "send retry room=%s id=%s status=%s retry=%s", room_id, message_id, status or error, failures
            )
            await self._sleep(delay * scale)

    def _falls_back(self) -> bool:
        return self.settings.stream_mode == "auto" and self._mode() != "participant"

    def _route(self) -> str:
        mode = self._mode()
        if mode in ("participant", "bot"):
            return mode
        if self.settings.stream_mode == "bot" or self._participant_missing:
            return "bot"
        return "participant"

    async def _post(
        self,
        route: str,
        message_id: str,
        room_id: str,
        thread_root_id: str,
        text: str,
        file: OutboundFile | None,
    ) -> httpx.Response:
        settings = self.settings
        if route == "participant":
            path = f"/api/v1/channels/csgclaw/participants/{settings.participant_id}/messages"
            body: dict = {"room_id": room_id, "text": text, "message_id": message_id}
            if thread_root_id:
                body["thread_root_id"] = thread_root_id
        else:
            path = "/api/v1/messages"
            body = {
                "room_id": room_id,
                "sender_id": settings.bot_id,
                "content": text,
                "client_msg_id": message_id,
            }
            if thread_root_id:
                body["relates_to"] = {"rel_type": "m.thread", "event_id": thread_root_id}
        url = join_url(settings.base_url, path)
        if file is None:
            return await self.client.post(url, json=body, timeout=SEND_TIMEOUT)
        # Multipart (participants.md §3.3): the JSON body as `payload`, the file streamed from disk in chunks.
        with open(file.path, "rb") as handle:
            return await self.client.post(
                url,
                data={"payload": json.dumps(body, ensure_ascii=False)},
                files={"files": (file.name, handle, file.media_type)},
                timeout=SEND_TIMEOUT,
            )


def stored_id(response: httpx.Response, fallback: str) -> str:
    """The id the server stored: `message_id` (participant send) or `id` (bot send); else the id we chose."""
    try:
        body = response.json()
    except ValueError:
        return fallback
    if isinstance(body, dict):
        for key in ("message_id", "id"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return fallback
