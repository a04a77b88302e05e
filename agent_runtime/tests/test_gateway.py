"""The gateway against a scripted server: start-up order, gating into the loop, gap scan, status, shutdown."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from agent_runtime.gateway import Gateway
from agent_runtime.journal import InboxJournal
from agent_runtime.tests.channel_fakes import (
    TOKEN,
    ScriptedServer,
    frame,
    make_settings,
    sse_message,
    stream_response,
)

PARTICIPANT = "/api/v1/channels/csgclaw/participants/pt-dev/events"
PARTICIPANT_SEND = "/api/v1/channels/csgclaw/participants/pt-dev/messages"
USERS = [
    {"id": "u-admin", "name": "admin", "role": "admin"},
    {"id": "u-dev", "name": "dev", "role": "worker"},
]


class FakeLoop:
    """Records what the gateway hands the agent half."""

    def __init__(self, settings, **ports):
        self.settings = settings
        self.ports = ports
        self.submitted = []
        self.closed = False

    def submit(self, inbound):
        self.submitted.append(inbound)

    async def run(self):
        await asyncio.Event().wait()

    async def close(self):
        self.closed = True


def _server(*stream_chunks, hold=True, bootstrap_rooms=()):
    server = ScriptedServer()
    server.always("GET", "/api/v1/users", httpx.Response(200, json=USERS))
    server.always("GET", "/api/v1/agents/u-dev", httpx.Response(200, json={"id": "u-dev", "name": "dev"}))
    server.always("GET", "/api/v1/im/bootstrap", httpx.Response(200, json={"rooms": list(bootstrap_rooms)}))
    server.queue("GET", PARTICIPANT, lambda request: stream_response(list(stream_chunks), hold=hold))
    server.always("GET", PARTICIPANT, httpx.ConnectError("server stopped"))
    return server


async def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


class Running:
    def __init__(self, tmp_path, server, **overrides):
        self.settings = make_settings(tmp_path, **overrides)
        self.gateway = Gateway(self.settings, loop_factory=FakeLoop, transport=server.transport)
        self.stop = asyncio.Event()

    @property
    def loop(self) -> FakeLoop:
        return self.gateway.agent_loop

    def status(self):
        return json.loads(self.gateway.status.path.read_text())

    async def __aenter__(self):
        self.task = asyncio.create_task(self.gateway.run(self.stop))
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        started = time.monotonic()
        await asyncio.wait_for(self.task, 5)
        assert time.monotonic() - started < 2


@pytest.mark.timeout(20)
async def test_frames_are_gated_journaled_and_queued(tmp_path):
    server = _server(
        sse_message(frame("msg-1", text="hello"), "msg-1"),
        sse_message(frame("msg-own", sender_id="u-dev"), "msg-own"),
        sse_message(frame("msg-1"), "msg-1"),
        sse_message(frame("msg-2", chat_type="group", text="no mention"), "msg-2"),
    )
    async with Running(tmp_path, server) as run:
        await _until(lambda: run.gateway.cursor.last_message_id == "msg-2")
        assert [i.message_id for i in run.loop.submitted] == ["msg-1"]
        inbound = run.loop.submitted[0]
        assert (inbound.sender_role, inbound.text) == ("admin", "hello")
        assert run.status()["connected"] is True and run.status()["stream"] == "participant"
        assert run.status()["last_message_id"] == "msg-1"
        journal = [json.loads(line) for line in run.gateway.journal.path.read_text().splitlines()]
        assert [(j["op"], j["id"], j.get("reason")) for j in journal] == [
            ("recv", "msg-1", None),
            ("ignored", "msg-own", "own message"),
            ("ignored", "msg-2", "not mentioned"),
        ]
        assert run.loop.ports["journal"] is run.gateway.journal
    cursor = json.loads((run.settings.state_dir / "cursor.json").read_text())
    assert (cursor["stream"], cursor["last_message_id"]) == ("participant", "msg-2")
    assert run.loop.closed
    assert run.status()["connected"] is False
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)


@pytest.mark.timeout(20)
async def test_unfinished_journal_entries_are_requeued_before_the_connect(tmp_path):
    settings = make_settings(tmp_path)
    journal = InboxJournal(settings)
    journal.open()
    journal.recv(
        message_id="msg-old", room_id="room-1", thread_root_id="", frame=frame("msg-old"), role="admin"
    )
    journal.close()
    server = _server(sse_message(frame("msg-new"), "msg-new"))
    async with Running(tmp_path, server, test_connect_delay=0.3) as run:
        await _until(lambda: len(run.loop.submitted) == 1)
        assert not server.calls("GET", PARTICIPANT)
        await _until(lambda: len(run.loop.submitted) == 2)
    assert [i.message_id for i in run.loop.submitted] == ["msg-old", "msg-new"]
    assert run.loop.submitted[0].sender_role == "admin"


@pytest.mark.timeout(20)
async def test_first_connect_ever_scans_for_gaps_before_live_frames(tmp_path):
    room = {
        "id": "room-1",
        "is_direct": True,
        "members": ["u-admin", "u-dev"],
        "messages": [
            {
                "id": "msg-missed",
                "sender_id": "u-admin",
                "kind": "message",
                "content": "while you were away",
                "created_at": "2099-01-01T00:00:00Z",
                "mentions": [],
            }
        ],
    }
    server = _server(sse_message(frame("msg-live"), "msg-live"), bootstrap_rooms=[room])
    # The scan's window is measured from now, so the missed message must be recent: rewrite its time.
    room["messages"][0]["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    async with Running(tmp_path, server) as run:
        await _until(lambda: len(run.loop.submitted) == 2)
    assert [i.message_id for i in run.loop.submitted] == ["msg-missed", "msg-live"]
    assert run.gateway.cursor.last_message_id == "msg-live"


@pytest.mark.timeout(20)
async def test_losing_the_server_flips_connected_with_the_reason(tmp_path):
    server = _server(hold=False)
    async with Running(tmp_path, server) as run:
        await _until(lambda: len(server.calls("GET", PARTICIPANT)) >= 3)
        await _until(lambda: run.status()["connected"] is False)
        await _until(lambda: run.status()["last_error"] == "connect failed: ConnectError: server stopped")
        assert run.gateway.stream.connected is False


@pytest.mark.timeout(20)
async def test_outbox_follows_the_stream_mode(tmp_path):
    server = _server()
    server.always("POST", PARTICIPANT_SEND, httpx.Response(200, json={"message_id": "x"}))
    async with Running(tmp_path, server) as run:
        await _until(lambda: run.gateway.stream.connected)
        outbox = run.loop.ports["outbox"]
        message_id = outbox.message_id(turn_id="msg-1", room_id="room-1", thread_root_id="", index=0)
        assert (await outbox.send(message_id=message_id, room_id="room-1", thread_root_id="", text="hi")).ok
    assert json.loads(server.calls("POST", PARTICIPANT_SEND)[0].content)["message_id"] == message_id


@pytest.mark.timeout(30)
async def test_a_full_turn_with_the_real_agent_loop(tmp_path, caplog):
    from agent_runtime.loop import AgentLoop
    from agent_runtime.outbox import outbound_id

    caplog.set_level("DEBUG", logger="agent_runtime")
    server = _server(sse_message(frame("msg-1", text="hello"), "msg-1"))
    server.always("POST", PARTICIPANT_SEND, httpx.Response(200, json={"message_id": "x"}))
    answer = {"choices": [{"message": {"role": "assistant", "content": "hi admin"}, "finish_reason": "stop"}]}
    server.always("POST", "/api/v1/agents/u-dev/llm/chat/completions", httpx.Response(200, json=answer))

    def real_loop(settings, **ports):
        return AgentLoop(settings, **{**ports, "llm_transport": server.transport})

    settings = make_settings(tmp_path)
    gateway = Gateway(settings, loop_factory=real_loop, transport=server.transport)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    await _until(lambda: server.calls("POST", PARTICIPANT_SEND))
    await _until(lambda: '"op":"done","id":"msg-1"' in gateway.journal.path.read_text())
    stop.set()
    await asyncio.wait_for(task, 5)
    (send,) = server.calls("POST", PARTICIPANT_SEND)
    assert json.loads(send.content) == {
        "room_id": "room-1",
        "text": "hi admin",
        "message_id": outbound_id("u-dev", "msg-1", "room-1", "", 0),
    }
    (llm_call,) = server.calls("POST", "/api/v1/agents/u-dev/llm/chat/completions")
    assert json.loads(llm_call.content)["messages"][-1] == {"role": "user", "content": "hello"}
    assert "inbound msg-1 room=room-1 accepted" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in gateway.status.path.read_text()
    for path in settings.workspace.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path
