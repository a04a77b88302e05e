"""Settings and a scripted server (an `httpx.MockTransport` handler) for the channel-half tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from agent_runtime.contracts import Settings

TOKEN = "box-token-secret"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    home = tmp_path / "home"
    workspace = home / ".picoclaw" / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        base_url="http://server.test",
        token=TOKEN,
        bot_id="u-dev",
        participant_id="pt-dev",
        llm_base_url="http://server.test/api/v1/agents/u-dev/llm",
        llm_api_key=TOKEN,
        model="m",
        home=home,
        workspace=workspace,
        backoff_scale=0.01,
        health_enabled=False,
    )
    return replace(settings, **overrides)


def sse_message(payload: dict[str, Any], sse_id: str = "") -> bytes:
    head = f"id: {sse_id}\n" if sse_id else ""
    return f"{head}event: message\ndata: {json.dumps(payload)}\n\n".encode()


def frame(message_id: str, *, room_id: str = "room-1", sender_id: str = "u-admin", **fields: Any) -> dict:
    """A participant-stream payload (participants.md §2.4) of a direct message unless told otherwise."""
    payload: dict[str, Any] = {
        "message_id": message_id,
        "room_id": room_id,
        "channel": "csgclaw",
        "chat_id": room_id,
        "chat_type": "direct",
        "sender": {"id": sender_id, "username": sender_id[2:], "display_name": sender_id[2:]},
        "sender_id": sender_id,
        "text": "hello",
        "timestamp": "1786000000123",
    }
    payload.update(fields)
    return payload


class EventBody(httpx.AsyncByteStream):
    """A streaming body: the given chunks, then (when `hold`) silence until `release` is set."""

    def __init__(self, chunks: list[bytes], *, hold: bool = False) -> None:
        self.chunks = chunks
        self.hold = hold
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hold:
            await self.release.wait()

    async def aclose(self) -> None:
        self.release.set()


def stream_response(chunks: list[bytes], *, hold: bool = False) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        stream=EventBody([b": connected\n\n", *chunks], hold=hold),
    )


class ScriptedServer:
    """Routes requests by (method, path) to handlers or queued responses, and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[
            tuple[str, str], list[Callable[[httpx.Request], httpx.Response] | httpx.Response]
        ] = {}
        self.fallback: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response] | httpx.Response] = {}

    def queue(self, method: str, path: str, *responses: Any) -> None:
        self.routes.setdefault((method, path), []).extend(responses)

    def always(self, method: str, path: str, response: Any) -> None:
        self.fallback[(method, path)] = response

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        queued = self.routes.get(key)
        response = queued.pop(0) if queued else self.fallback.get(key)
        if response is None:
            return httpx.Response(404, text="404 page not found\n")
        if callable(response):
            response = response(request)
        if isinstance(response, Exception):
            raise response
        return response

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
