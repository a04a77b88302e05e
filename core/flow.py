"""The connection a request arrived on, as far as a stream needs it: unsent bytes and abort (S7.1).

The ASGI server knows how much of a response its socket has not taken yet; the application does not,
because Daphne's `send` returns as soon as a frame is in Twisted's (unbounded) write buffer. Daphne's
request (server.daphne_guards) sets `current_connection` for the application task it starts, so a
stream can wait for its client, or give up on it. Elsewhere (other servers, in-process tests) it is None.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Protocol


class Connection(Protocol):
    def unsent_bytes(self) -> int:
        """Response bytes written but not yet accepted by the socket."""

    def abort(self) -> None:
        """Close at once, dropping what is unsent."""


current_connection: ContextVar[Connection | None] = ContextVar("csgclaw_current_connection", default=None)


async def client_keeps_up(
    connection: Connection | None, *, max_unsent: int, stalled_seconds: float, poll_seconds: float
) -> bool:
    """Waits until the client has at most `max_unsent` bytes unread; False if it stalls there that long."""
    if connection is None or connection.unsent_bytes() <= max_unsent:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stalled_seconds
    while connection.unsent_bytes() > max_unsent:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(poll_seconds)
    return True
