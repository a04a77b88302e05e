"""ASGI middleware around the Django application: request bodies over a route's limit are refused (S6).

Under Daphne, server.daphne_guards refuses them already, before Twisted reads them; this layer keeps
the rule for any ASGI server that streams bodies to the application, and it is what stops Django's
`read_body` from spooling more than the limit: an announced length over it is answered without a single
`receive()`, and a body without one is counted chunk by chunk and cut off once it passes the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.http import BODY_TOO_LARGE_TEXT, accepts_json, body_limit, error_content

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DISCONNECT: Message = {"type": "http.disconnect"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def announced_length(scope: Scope) -> int | None:
    """The Content-Length of the request when it is a plain number (servers reject any other)."""
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


async def send_body_too_large(scope: Scope, send: Send) -> None:
    accept = (_header(scope, b"accept") or b"").decode("latin-1")
    content_type, body = error_content(413, BODY_TOO_LARGE_TEXT, as_json=accepts_json(accept))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses an HTTP request whose body passes `body_limit(path)` with 413 `request body too large`."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        announced = announced_length(scope)
        if announced is not None and announced > limit:
            await send_body_too_large(scope, send)
            return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            # Past the limit the application sees the client go away (Django then stops reading and
            # answers nothing), and the 413 is sent below.
            nonlocal received, refused
            if refused:
                return DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    return DISCONNECT
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if refused and not started:
            await send_body_too_large(scope, send)
