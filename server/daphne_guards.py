"""Daphne's HTTP request with the socket-level rules of security.md: bodies over a route's limit are refused
before Twisted reads them (S6), and streams can see how much their client has not read yet (S7.1).

Both need Daphne's protocol object, not the ASGI application: Twisted reads a whole request body into
`Request.content` (a temporary file past 100 kB) before Daphne calls the application at all, and Daphne's
ASGI `send` returns as soon as a frame is appended to Twisted's write buffer, which grows without bound
while a client does not read. The request therefore offers itself as the application task's
`core.flow.current_connection`; the SSE generator (im.realtime.sse) waits on it.

`install()` makes Daphne build these requests; csgclaw_site.asgi calls it, so
`daphne csgclaw_site.asgi:application`, `manage.py runserver` and `manage.py serve` all get it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from daphne import http_protocol

from core.flow import current_connection
from core.http import BODY_TOO_LARGE_TEXT, ONE_MIB, accepts_json, body_limit, error_content

logger = logging.getLogger("csgclaw.http")


def request_target_path(target: bytes) -> str:
    """The decoded path of a request line's target (origin or absolute form), as Daphne's scope has it."""
    raw = target.split(b"?", 1)[0]
    if not raw.startswith(b"/"):
        raw = urlsplit(raw).path or b"/"
    return unquote(raw.decode("latin-1"))


def unsent_bytes(transport: Any) -> int:
    """Bytes written to a Twisted TCP transport that the socket has not taken yet.

    These are FileDescriptor's buffer attributes (its write() appends to `_tempDataBuffer`, doWrite()
    moves that into `dataBuffer` and advances `offset`). A transport without them counts as empty.
    """
    pending = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return pending + getattr(transport, "_tempDataLen", 0)


class GuardedWebRequest(http_protocol.WebRequest):
    """Daphne's request: refuses oversized bodies unread, and is the `Connection` of its application."""

    _body_limit = ONE_MIB
    _body_received = 0
    _refused = False
    _aborted = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Twisted would read a whole form or multipart body into memory (in several copies) to fill
        # `Request.args`, which Daphne never uses: a 20 MiB attachment cost 250 MB. Applications parse
        # bodies themselves, streaming (threads-attachments.md §2.4).
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        # Called once the headers are in, before any body byte is read (and before "100 Continue").
        # The request line is still the channel's: Request.uri is only set once the body has arrived.
        self._body_limit = body_limit(request_target_path(getattr(self.channel, "_path", b"/")))
        if length is not None and length > self._body_limit:
            super().gotLength(0)
            self._refuse(announced=length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        # Chunked bodies announce no length: counted as they arrive, at most the limit is kept.
        if self._refused:
            return
        self._body_received += len(data)
        if self._body_received > self._body_limit:
            self._refuse(announced=None)
            return
        super().handleContentChunk(data)

    def process(self):
        # A refused body may still end inside bytes already read: the application never sees it.
        if self._refused:
            return None
        # Daphne starts the application task inside this call; the task copies the context set here.
        token = current_connection.set(self)
        try:
            return super().process()
        finally:
            current_connection.reset(token)

    def _refuse(self, *, announced: int | None) -> None:
        self._refused = True
        # Twisted answers "Expect: 100-continue" right after gotLength; the client need not send the body.
        self.requestHeaders.removeHeader(b"Expect")
        accept = b",".join(self.requestHeaders.getRawHeaders(b"Accept") or []).decode("latin-1")
        content_type, body = error_content(413, BODY_TOO_LARGE_TEXT, as_json=accepts_json(accept))
        head = (
            "HTTP/1.1 413 Request Entity Too Large\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Connection: close\r\n\r\n"
        )
        logger.info(
            "refused a request body over %d bytes (%s) for %s",
            self._body_limit,
            f"announced {announced}" if announced is not None else "chunked",
            request_target_path(getattr(self.channel, "_path", b"/")),
        )
        self.channel.transport.write(head.encode() + body)
        # Stops reading at once; the answer is flushed before the socket closes.
        self.channel.loseConnection()

    def unsent_bytes(self) -> int:
        return unsent_bytes(self.channel.transport) if self.channel is not None else 0

    def abort(self) -> None:
        if self.channel is None or self._aborted:
            return
        self._aborted = True
        # Unlike loseConnection, which would keep the unsent bytes until the client read them all.
        self.channel.transport.abortConnection()

    def handle_reply(self, message: dict[str, Any]) -> None:
        # An aborted connection is gone once Twisted reports it lost; nothing more is written meanwhile.
        if not self._aborted:
            super().handle_reply(message)


def install() -> None:
    """Make Daphne's HTTP factory build GuardedWebRequest (it looks the class up on every connection)."""
    http_protocol.WebRequest = GuardedWebRequest
