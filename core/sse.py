"""SSE framing: the comment frames, one event frame, and the streaming response every event stream returns."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse

CONNECTED = b": connected\n\n"
PING = b": ping\n\n"


def sse_frame(frame_id: int | str, data: dict[str, Any], *, event_name: str = "") -> bytes:
    """One frame: `id:`, optional `event:`, exactly one `data:` line of compact JSON."""
    name_line = f"event: {event_name}\n" if event_name else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {frame_id}\n{name_line}data: {body}\n\n".encode()


def sse_response(frames: AsyncIterator[bytes]) -> StreamingHttpResponse:
    """The 200 response that streams `frames` as `text/event-stream`, uncached and unbuffered."""
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # Tells nginx-style proxies to pass frames through instead of buffering them.
    response["X-Accel-Buffering"] = "no"
    return response
