"""SSE framing (core/sse.py): the exact bytes of a frame and the headers of the streaming response."""

from __future__ import annotations

import pytest

from core.sse import sse_frame, sse_response

pytestmark = pytest.mark.timeout(10)


def test_a_frame_has_its_id_one_compact_data_line_and_a_blank_line() -> None:
    frame = sse_frame(7, {"type": "message.created", "text": "héllo"})

    assert frame == 'id: 7\ndata: {"type":"message.created","text":"héllo"}\n\n'.encode()


def test_a_named_frame_carries_its_event_line_between_id_and_data() -> None:
    assert (
        sse_frame("msg-1", {"a": 1}, event_name="message") == b'id: msg-1\nevent: message\ndata: {"a":1}\n\n'
    )


async def test_the_response_streams_uncached_and_unbuffered() -> None:
    async def frames():
        yield b": connected\n\n"

    response = sse_response(frames())

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert [chunk async for chunk in response.streaming_content] == [b": connected\n\n"]
