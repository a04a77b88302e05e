"""Daphne's HTTP request with the socket-level rules of security.md: bodies over a route's limit are refused
before Twisted reads them (S6), and an SSE response whose unsent bytes pass 1 MiB is closed (S7.1).

Both rules need Daphne's protocol object, not the ASGI application: Twisted reads a whole request body into
`Request.content` (a temporary file past 100 kB) before Daphne calls the application at all, and Daphne's
ASGI `send` returns as soon as a frame is appended to Twisted's write buffer, which grows without bound
while a client does not read. `install()` makes Daphne build these requests; csgclaw_site.asgi calls it, so
`daphne csgclaw_site.asgi:application`, `manage.py runserver` and `manage.py serve` all get it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from daphne import http_protocol

from csgclaw_site.http import BODY_TOO_LARGE_TEXT, ONE_MIB, accepts_json, body_limit, error_content

logger = logging.getLogger("csgclaw.http")

# S7.1: frames not yet accepted by the socket, per stream. Past this the client is not reading; it
# resumes with Last-Event-ID from the durable log, so closing loses it nothing.
MAX_UNSENT_STREAM_BYTES = ONE_MIB
EVENT_STREAM_TYPE = b"text/event-stream"


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


def _is_event_stream(headers: Any) -> bool:
    return any(
        name.lower() == b"content-type" and value.split(b";", 1)[0].strip().lower() == EVENT_STREAM_TYPE
        for name, value in headers
    )


class GuardedWebRequest(http_protocol.WebRequest):
    """Daphne's request, refusing oversized bodies unread and closing SSE responses to stalled readers."""

    _body_limit = ONE_MIB
    _body_received = 0
    _refused = False
    _event_stream = False
    _stream_closed = False

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
        return super().process()

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

    def handle_reply(self, message: dict[str, Any]) -> None:
        if self._stream_closed:
            return
        if message["type"] == "http.response.start":
            self._event_stream = _is_event_stream(message.get("headers", ()))
        super().handle_reply(message)
        if not self._event_stream or message["type"] != "http.response.body" or self.channel is None:
            return
        transport = self.channel.transport
        if unsent_bytes(transport) > MAX_UNSENT_STREAM_BYTES:
            self._stream_closed = True
            logger.info(
                "closed a stream to %s: its client left over %d bytes unread",
                self.client_addr,
                MAX_UNSENT_STREAM_BYTES,
            )
            # Dropping the buffer is the point: loseConnection would keep it until the client read it all.
            transport.abortConnection()


def install() -> None:
    """Make Daphne's HTTP factory build GuardedWebRequest (it looks the class up on every connection)."""
    http_protocol.WebRequest = GuardedWebRequest
