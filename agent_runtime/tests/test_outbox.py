"""Deterministic ids, routes, retries and truncation of sends (builtin-runtime.md §3.6)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from agent_runtime import outbox as outbox_module
from agent_runtime.contracts import OutboundFile
from agent_runtime.outbox import HttpOutbox, outbound_id
from agent_runtime.tests.channel_fakes import TOKEN, ScriptedServer, make_settings

PARTICIPANT_SEND = "/api/v1/channels/csgclaw/participants/pt-dev/messages"


def _outbox(tmp_path, server, mode="participant", **overrides):
    client = httpx.AsyncClient(transport=server.transport, headers={"Authorization": f"Bearer {TOKEN}"})
    return HttpOutbox(make_settings(tmp_path, **overrides), client, mode=lambda: mode)


def test_ids_are_deterministic_and_every_input_changes_them():
    base = ("u-dev", "msg-1", "room-1", "", 0)
    first = outbound_id(*base)
    assert first == outbound_id(*base)
    assert re.fullmatch(r"msg-rt-[0-9a-f]{24}", first) and len(first) == 31
    for position, other in enumerate(("u-bob", "msg-2", "room-2", "msg-root", 1)):
        changed = list(base)
        changed[position] = other
        assert outbound_id(*changed) != first


async def test_participant_send_body_and_retries_on_503_reuse_the_id(tmp_path):
    server = ScriptedServer()
    outbox = _outbox(tmp_path, server)
    message_id = outbox.message_id(turn_id="msg-1", room_id="room-1", thread_root_id="msg-root", index=0)
    server.queue(
        "POST",
        PARTICIPANT_SEND,
        httpx.Response(503, text="busy"),
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"message_id": message_id}),
    )
    result = await outbox.send(
        message_id=message_id, room_id="room-1", thread_root_id="msg-root", text="  hi  "
    )
    assert result.ok and result.message_id == message_id
    calls = server.calls("POST", PARTICIPANT_SEND)
    assert len(calls) == 3
    bodies = [json.loads(call.content) for call in calls]
    assert (
        bodies
        == [{"room_id": "room-1", "text": "hi", "message_id": message_id, "thread_root_id": "msg-root"}] * 3
    )
    assert calls[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_other_4xx_is_not_retried(tmp_path, caplog):
    server = ScriptedServer()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(400, text="room not found\n"))
    result = await _outbox(tmp_path, server).send(
        message_id="msg-rt-x", room_id="r", thread_root_id="", text="hi"
    )
    assert (result.ok, result.error) == (False, "400 room not found")
    assert len(server.requests) == 1
    assert "send failed: 400 room not found" in caplog.text


async def test_429_and_network_errors_are_retried(tmp_path):
    server = ScriptedServer()
    server.queue(
        "POST",
        PARTICIPANT_SEND,
        httpx.Response(429),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={}),
    )
    result = await _outbox(tmp_path, server).send(
        message_id="msg-rt-x", room_id="r", thread_root_id="", text="hi"
    )
    assert result.ok
    assert len(server.requests) == 3


@pytest.mark.timeout(10)
async def test_retries_stop_when_the_budget_is_spent(tmp_path):
    server = ScriptedServer()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(500, text="down"))
    result = await _outbox(tmp_path, server).send(
        message_id="msg-rt-x", room_id="r", thread_root_id="", text="hi"
    )
    assert not result.ok and result.error == "500 down"
    # 120 s × 0.01 with delays 0.5, 1, 2, 4, 8, 8… (× 0.01) allows about 20 attempts.
    assert 10 <= len(server.requests) <= 25


async def test_bot_mode_posts_the_rest_route_with_client_msg_id(tmp_path):
    server = ScriptedServer()
    server.always("POST", "/api/v1/messages", httpx.Response(201, json={"id": "msg-rt-x"}))
    outbox = _outbox(tmp_path, server, mode="bot")
    await outbox.send(message_id="msg-rt-x", room_id="room-1", thread_root_id="msg-root", text="done")
    (call,) = server.calls("POST", "/api/v1/messages")
    assert json.loads(call.content) == {
        "room_id": "room-1",
        "sender_id": "u-dev",
        "content": "done",
        "client_msg_id": "msg-rt-x",
        "relates_to": {"rel_type": "m.thread", "event_id": "msg-root"},
    }


async def test_before_any_connect_auto_falls_back_to_the_bot_route_on_404(tmp_path):
    server = ScriptedServer()
    server.always("POST", "/api/v1/messages", httpx.Response(201, json={}))
    outbox = _outbox(tmp_path, server, mode="")
    assert (await outbox.send(message_id="m1", room_id="r", thread_root_id="", text="a")).ok
    assert (await outbox.send(message_id="m2", room_id="r", thread_root_id="", text="b")).ok
    assert [r.url.path for r in server.requests] == [PARTICIPANT_SEND, "/api/v1/messages", "/api/v1/messages"]


async def test_blank_is_not_sent_and_long_text_is_cut(tmp_path):
    server = ScriptedServer()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(200, json={}))
    outbox = _outbox(tmp_path, server)
    assert (await outbox.send(message_id="m", room_id="r", thread_root_id="", text=" \n ")).ok
    assert server.requests == []
    await outbox.send(message_id="m", room_id="r", thread_root_id="", text="x" * 70_000)
    text = json.loads(server.requests[0].content)["text"]
    assert text == "x" * 60_000 + "\n… (truncated)"


async def test_base_url_path_and_query_are_kept(tmp_path):
    server = ScriptedServer()
    server.always("POST", "/v1" + PARTICIPANT_SEND, httpx.Response(200, json={}))
    outbox = _outbox(tmp_path, server, base_url="http://server.test/v1?name=foo")
    assert (await outbox.send(message_id="m", room_id="r", thread_root_id="", text="a")).ok
    assert str(server.requests[0].url) == "http://server.test/v1" + PARTICIPANT_SEND + "?name=foo"


def multipart_parts(request: httpx.Request) -> dict[str, tuple[str, bytes]]:
    """The parts of a multipart request by field name: (their header lines, their bytes)."""
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    parts = {}
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = head.decode()
        parts[re.search(r'name="([^"]*)"', headers).group(1)] = (headers, data.removesuffix(b"\r\n"))
    return parts


def _outbound(tmp_path, data=b"col\n1\n", name="report.csv", media_type="text/csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return OutboundFile(path=str(path), name=name, media_type=media_type, size=len(data))


async def test_a_file_goes_as_multipart_with_the_json_body_as_payload(tmp_path):
    server = ScriptedServer()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(200, json={"message_id": "msg-rt-f"}))
    file = _outbound(tmp_path)
    result = await _outbox(tmp_path, server).send(
        message_id="msg-rt-f", room_id="room-1", thread_root_id="msg-root", text=" the data ", file=file
    )
    assert (result.ok, result.message_id) == (True, "msg-rt-f")
    (call,) = server.calls("POST", PARTICIPANT_SEND)
    parts = multipart_parts(call)
    assert json.loads(parts["payload"][1]) == {
        "room_id": "room-1",
        "text": "the data",
        "message_id": "msg-rt-f",
        "thread_root_id": "msg-root",
    }
    headers, data = parts["files"]
    assert 'filename="report.csv"' in headers and "Content-Type: text/csv" in headers
    assert data == b"col\n1\n"
    assert call.headers["Content-Length"] == str(len(call.content))


async def test_a_file_without_caption_is_sent_and_the_server_id_is_returned(tmp_path):
    server = ScriptedServer()
    server.always("POST", "/api/v1/messages", httpx.Response(201, json={"id": "msg-stored"}))
    outbox = _outbox(tmp_path, server, mode="bot")
    result = await outbox.send(
        message_id="msg-rt-f",
        room_id="room-1",
        thread_root_id="msg-root",
        text="  ",
        file=_outbound(tmp_path),
    )
    assert (result.ok, result.message_id) == (True, "msg-stored")
    parts = multipart_parts(server.calls("POST", "/api/v1/messages")[0])
    assert json.loads(parts["payload"][1]) == {
        "room_id": "room-1",
        "sender_id": "u-dev",
        "content": "",
        "client_msg_id": "msg-rt-f",
        "relates_to": {"rel_type": "m.thread", "event_id": "msg-root"},
    }
    assert parts["files"][1] == b"col\n1\n"


async def test_a_retried_file_send_uploads_the_whole_file_again(tmp_path):
    server = ScriptedServer()
    server.queue(
        "POST",
        PARTICIPANT_SEND,
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"message_id": "m"}),
    )
    result = await _outbox(tmp_path, server).send(
        message_id="m", room_id="r", thread_root_id="", text="", file=_outbound(tmp_path)
    )
    assert result.ok
    assert [multipart_parts(call)["files"][1] for call in server.requests] == [b"col\n1\n"] * 2


async def test_the_file_is_read_in_chunks_not_whole(tmp_path, monkeypatch):
    reads = []

    class CountingFile(io.FileIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    monkeypatch.setattr(outbox_module, "open", lambda path, mode: CountingFile(path, "r"), raising=False)
    server = ScriptedServer()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(200, json={"message_id": "m"}))
    file = _outbound(
        tmp_path, data=os.urandom(300_000), name="blob.bin", media_type="application/octet-stream"
    )
    assert (
        await _outbox(tmp_path, server).send(
            message_id="m", room_id="r", thread_root_id="", text="", file=file
        )
    ).ok
    assert len(reads) > 4 and all(0 < size <= 64 * 1024 for size in reads)
    assert multipart_parts(server.requests[0])["files"][1] == Path(file.path).read_bytes()


async def test_a_file_gone_before_sending_fails_without_a_request(tmp_path):
    server = ScriptedServer()
    file = _outbound(tmp_path)
    os.unlink(file.path)
    result = await _outbox(tmp_path, server).send(
        message_id="m", room_id="r", thread_root_id="", text="x", file=file
    )
    assert (result.ok, result.error) == (False, "cannot read the file: No such file or directory")
    assert server.requests == []
