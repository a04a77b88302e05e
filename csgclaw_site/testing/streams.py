"""SSE responses of Django's ASGI application read in-process, one body chunk per frame, without a server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from csgclaw_site.tests.asgi_scope import http_scope


@dataclass(frozen=True)
class SseFrame:
    """One SSE frame as written by the server: `id:`, optional `event:`, and the raw `data:` text."""

    id: int
    event: str
    data_text: str
    raw: bytes

    @property
    def data(self) -> Any:
        return json.loads(self.data_text)

    @classmethod
    def parse(cls, raw: bytes) -> SseFrame:
        assert raw.endswith(b"\n\n") and raw.count(b"\n\n") == 1, raw
        fields: dict[str, list[str]] = {}
        for line in raw.decode()[:-2].split("\n"):
            name, separator, value = line.partition(": ")
            assert separator and name in ("id", "event", "data"), raw
            fields.setdefault(name, []).append(value)
        assert all(len(values) == 1 for values in fields.values()), raw
        return cls(
            id=int(fields["id"][0]),
            event=fields.get("event", [""])[0],
            data_text=fields["data"][0],
            raw=raw,
        )


class AsgiStream:
    """An SSE response of Django's ASGI application, read one `http.response.body` message at a time."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.start: dict[str, Any] = {}
        self.ended = False

    @property
    def status(self) -> int:
        return self.start["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {name.decode().lower(): value.decode() for name, value in self.start["headers"]}

    async def chunk(self, timeout: float = 5.0) -> bytes:
        """The next body chunk (one frame or comment). Raises AssertionError once the body has ended."""
        assert not self.ended, "the response body has already ended"
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "http.response.body", message
        self.ended = not message.get("more_body", False)
        return message.get("body", b"")

    async def frame(self, timeout: float = 5.0) -> SseFrame:
        """The next frame, skipping `: ping` comments."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, "no frame arrived in time"
            body = await self.chunk(remaining)
            assert not self.ended, "the stream ended before a frame arrived"
            if body != b": ping\n\n":
                return SseFrame.parse(body)

    async def frames(self, count: int, timeout: float = 10.0) -> list[SseFrame]:
        deadline = asyncio.get_running_loop().time() + timeout
        return [await self.frame(deadline - asyncio.get_running_loop().time()) for _ in range(count)]

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Hang up like a client and wait until the application has finished."""
        if not self.communicator.future.done():
            await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout)


@pytest.fixture
async def asgi_stream() -> AsyncIterator[Callable[..., Any]]:
    """Open a GET stream on the ASGI application: `await asgi_stream(path, headers={}, query={})`.

    Returns an `AsgiStream` after the `http.response.start` message; streams still open at teardown
    are disconnected. Tests that use it need `@pytest.mark.django_db(transaction=True)`.
    """
    from channels.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
    opened: list[AsgiStream] = []

    async def open_stream(
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        method: str = "GET",
        start_timeout: float = 5.0,
    ) -> AsgiStream:
        query_string = urlencode(query or {}).encode()
        scope = http_scope(method, path, headers=headers, query_string=query_string)
        stream = AsgiStream(ApplicationCommunicator(application, scope))
        opened.append(stream)
        await stream.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        stream.start = await stream.communicator.receive_output(start_timeout)
        assert stream.start["type"] == "http.response.start", stream.start
        return stream

    yield open_stream
    for stream in opened:
        await stream.disconnect()
