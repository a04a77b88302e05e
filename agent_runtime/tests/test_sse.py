"""The SSE parser on the server's real frames (events.md §3.3, participants.md §2.4; spec §3.2 step 4)."""

from __future__ import annotations

from agent_runtime.sse import SseFrame, SseParser, decode_message

BOT_STREAM = (
    b": connected\n\n"
    b"id: 57\nevent: message\n"
    b'data: {"message_id":"msg-1745650000123456789","room_id":"room-1745640000000000000",'
    b'"chat_id":"room-1745640000000000000","chat_type":"group","sender":{"id":"u-admin","username":"admin",'
    b'"display_name":"admin"},"text":"<at user_id=\\"u-dev\\">dev</at> build the settings page",'
    b'"timestamp":"1745650000123","mentions":["u-dev"]}\n\n'
    b": ping\n\n"
)
PARTICIPANT_STREAM = (
    b": connected\r\n\r\n"
    b"id: msg-1786000000123456789\r\nevent: message\r\n"
    b'data: {"message_id":"msg-1786000000123456789","room_id":"room-1","channel":"csgclaw",'
    b'"chat_id":"room-1",'
    b'"chat_type":"group","sender":{"id":"u-admin"},"sender_id":"u-admin","text":"\xc3\xa9t\xc3\xa9",'
    b'"timestamp":"1786000000123","mentions":["pt-dev"],"mentioned":true,"context":{"channel":"csgclaw"}}\r\n\r\n'
    b": heartbeat\r\n\r\n"
)


def _parse(data: bytes, step: int) -> list[SseFrame]:
    parser = SseParser()
    frames = []
    for start in range(0, len(data), step):
        frames.extend(parser.feed(data[start : start + step]))
    return frames


def test_bot_stream_frame_in_any_chunking():
    for step in (1, 7, len(BOT_STREAM)):
        frames = [f for f in _parse(BOT_STREAM, step) if f.data]
        assert len(frames) == 1
        assert (frames[0].id, frames[0].event) == ("57", "message")
        payload, _ = decode_message(frames[0])
        assert payload["mentions"] == ["u-dev"]
        assert payload["text"].startswith('<at user_id="u-dev">')


def test_participant_stream_with_crlf_and_multibyte_split():
    for step in (1, 3, len(PARTICIPANT_STREAM)):
        frames = [f for f in _parse(PARTICIPANT_STREAM, step) if f.data]
        assert [f.id for f in frames] == ["msg-1786000000123456789"]
        payload, _ = decode_message(frames[0])
        assert payload["text"] == "été"
        assert payload["mentioned"] is True


def test_data_lines_join_and_fields_are_trimmed():
    frames = SseParser().feed(b'event:  message \ndata: {"a":\ndata:   1}\nid:  7 \n\n')
    assert frames == [SseFrame("message", '{"a":\n1}', "7")]
    assert decode_message(frames[0]) == ({"a": 1}, "")


def test_dropped_frames_say_why():
    parser = SseParser()
    reset, stop, empty, bad, array = parser.feed(
        b'id: 9\nevent: reset\ndata: {"type":"reset","last_event_id":9}\n\n'
        b'event: participant.work.stop_requested\ndata: {"room_id":"r"}\n\n'
        b"event: message\n\n"
        b"data: {oops\n\n"
        b"data: [1]\n\n"
    )
    assert decode_message(reset) == (None, "event 'reset'")
    assert decode_message(stop)[0] is None
    assert decode_message(empty) == (None, "empty data")
    assert decode_message(bad) == (None, "bad JSON")
    assert decode_message(array) == (None, "data is not an object")


def test_unnamed_event_is_a_message():
    (frame,) = SseParser().feed(b'data: {"message_id":"m"}\n\n')
    assert decode_message(frame) == ({"message_id": "m"}, "")


def test_a_heartbeat_comment_and_blank_lines_dispatch_nothing():
    parser = SseParser()

    frames = parser.feed(b": connected\n\n: heartbeat\n\n\n\nid: msg-1\ndata: {}\n\n")

    assert frames == [SseFrame(event="", data="{}", id="msg-1")]
