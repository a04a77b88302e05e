"""The gap scan (builtin-runtime.md §3.5): which rooms are read, which messages are still owed an answer."""

from __future__ import annotations

import json

import httpx

from agent_runtime.contracts import utc_iso
from agent_runtime.gapscan import GapScanner
from agent_runtime.journal import InboxJournal
from agent_runtime.rest import RestApi, make_client
from agent_runtime.tests.channel_fakes import ScriptedServer, make_settings

NOW = 1_800_000_000.0


def _message(message_id, sender="u-admin", age=60.0, mentions=(), kind="message", **fields):
    return {
        "id": message_id,
        "sender_id": sender,
        "kind": kind,
        "content": f"text of {message_id}",
        "created_at": utc_iso(NOW - age),
        "mentions": list(mentions),
        **fields,
    }


def _scanner(tmp_path, server, **overrides):
    settings = make_settings(tmp_path, **overrides)
    journal = InboxJournal(settings, clock=lambda: NOW)
    journal.open()
    rest = RestApi(settings, make_client(settings, transport=server.transport))
    return GapScanner(settings, rest, journal, clock=lambda: NOW), journal, settings


async def test_first_connect_ever_reads_bootstrap_rooms_that_hold_me(tmp_path):
    server = ScriptedServer()
    rooms = [
        {
            "id": "room-d",
            "is_direct": True,
            "members": ["u-admin", "u-dev"],
            "messages": [
                _message("msg-answered", age=300),
                _message("msg-mine", sender="u-dev", age=200),
                _message("msg-1", age=100),
                _message("msg-event", kind="event", age=90),
                _message("msg-old", age=4000),
            ],
        },
        {
            "id": "room-g",
            "is_direct": False,
            "members": ["u-admin", "u-dev", "u-bob"],
            "messages": [
                _message("msg-g1", age=50, mentions=["u-dev"]),
                _message("msg-g2", age=40, mentions=["u-bob"]),
                _message(
                    "msg-g3",
                    sender="u-bob",
                    age=30,
                    mentions=["u-dev"],
                    relates_to={"rel_type": "m.thread", "event_id": "msg-g1"},
                ),
            ],
        },
        {"id": "room-x", "is_direct": True, "members": ["u-admin", "u-bob"], "messages": [_message("msg-x")]},
    ]
    server.always("GET", "/api/v1/im/bootstrap", httpx.Response(200, json={"rooms": rooms}))
    scanner, _, _ = _scanner(tmp_path, server)
    frames = await scanner.scan(first_ever=True, since=None)
    assert [f["message_id"] for f in frames] == ["msg-1", "msg-g1", "msg-g3"]
    assert frames[0] == {
        "message_id": "msg-1",
        "room_id": "room-d",
        "chat_id": "room-d",
        "chat_type": "direct",
        "sender": {"id": "u-admin"},
        "sender_id": "u-admin",
        "text": "text of msg-1",
        "timestamp": str(round((NOW - 100) * 1000)),
    }
    assert frames[2]["thread_root_id"] == "msg-g1" and frames[2]["mentions"] == ["u-dev"]


async def test_later_connects_read_recent_session_rooms_and_journal_rooms(tmp_path):
    server = ScriptedServer()
    scanner, journal, settings = _scanner(tmp_path, server)
    sessions = settings.workspace / "sessions"
    sessions.mkdir()
    (sessions / "csgclaw_room-a.meta.json").write_text(
        json.dumps({"room_id": "room-a", "chat_type": "direct", "updated_at": utc_iso(NOW - 60)})
    )
    (sessions / "csgclaw_room-stale.meta.json").write_text(
        json.dumps({"room_id": "room-stale", "chat_type": "direct", "updated_at": utc_iso(NOW - 4000)})
    )
    journal.recv(message_id="msg-p", room_id="room-j", thread_root_id="", frame={"chat_type": "group"})
    server.always(
        "GET",
        "/api/v1/messages",
        lambda request: httpx.Response(
            200,
            json={
                "room-a": [_message("msg-before-since", age=500), _message("msg-a", age=100)],
                "room-j": [
                    _message("msg-p", age=50, mentions=["u-dev"]),
                    _message("msg-j", age=20, mentions=["pt-dev"]),
                ],
            }[request.url.params["room_id"]],
        ),
    )
    frames = await scanner.scan(first_ever=False, since=NOW - 200)
    assert [f["message_id"] for f in frames] == ["msg-a", "msg-j"]
    assert sorted(r.url.params["room_id"] for r in server.requests) == ["room-a", "room-j"]
    assert frames[1]["chat_type"] == "group"


async def test_thread_replies_are_read_and_answered_per_conversation(tmp_path):
    server = ScriptedServer()
    scanner, journal, _ = _scanner(tmp_path, server)
    journal.recv(message_id="msg-p", room_id="room-g", thread_root_id="", frame={"chat_type": "group"})
    in_thread = {"relates_to": {"rel_type": "m.thread", "event_id": "msg-root"}}
    messages = [
        _message("msg-root", age=300, mentions=["u-dev"]),
        _message("msg-t1", age=250, mentions=["u-dev"], **in_thread),
        _message("msg-top", age=200, mentions=["u-dev"]),
        _message("msg-top-answer", sender="u-dev", age=150),
        _message("msg-t1-answer", sender="u-dev", age=140, **in_thread),
        _message("msg-t2", age=100, mentions=["u-dev"], **in_thread),
    ]
    server.always("GET", "/api/v1/messages", lambda request: httpx.Response(200, json=messages))
    summary = {"root_excerpt": "text of msg-root", "message_count": 1, "before_count": 0, "after_count": 0}
    view = {"room_id": "room-g", "root": {"id": "msg-root", "thread": {"context_summary": summary}}}
    view["context"] = [messages[0]]
    server.always("GET", "/api/v1/rooms/room-g/threads/msg-root", httpx.Response(200, json=view))
    frames = await scanner.scan(first_ever=False, since=NOW - 1000)
    assert [(f["message_id"], f.get("thread_root_id")) for f in frames] == [("msg-t2", "msg-root")]
    assert server.requests[0].url.params["include_thread_replies"] == "true"
    assert frames[0]["thread_context"] == {
        "root_message_id": "msg-root",
        "summary": summary,
        "context": [messages[0]],
    }
    messages[4] = _message("msg-other", age=140, mentions=["u-bob"], **in_thread)
    frames = await scanner.scan(first_ever=False, since=NOW - 1000)
    assert [f["message_id"] for f in frames] == ["msg-t1", "msg-t2"]


async def test_a_thread_view_that_does_not_read_leaves_the_frame_without_context(tmp_path):
    server = ScriptedServer()
    scanner, journal, _ = _scanner(tmp_path, server)
    journal.recv(message_id="msg-p", room_id="room-d", thread_root_id="", frame={"chat_type": "direct"})
    reply = _message("msg-t", age=100, relates_to={"rel_type": "m.thread", "event_id": "msg-root"})
    server.always("GET", "/api/v1/messages", httpx.Response(200, json=[reply]))
    server.always(
        "GET", "/api/v1/rooms/room-d/threads/msg-root", httpx.Response(404, text="thread not found\n")
    )
    (frame,) = await scanner.scan(first_ever=False, since=NOW - 1000)
    assert frame["thread_root_id"] == "msg-root" and "thread_context" not in frame


async def test_at_most_twenty_newest_oldest_first(tmp_path):
    server = ScriptedServer()
    room = {
        "id": "room-d",
        "is_direct": True,
        "members": ["u-dev"],
        "messages": [_message(f"msg-{i:02d}", age=1000 - i) for i in range(30)],
    }
    server.always("GET", "/api/v1/im/bootstrap", httpx.Response(200, json={"rooms": [room]}))
    scanner, _, _ = _scanner(tmp_path, server)
    frames = await scanner.scan(first_ever=True, since=None)
    assert [f["message_id"] for f in frames] == [f"msg-{i:02d}" for i in range(10, 30)]


async def test_unreadable_server_gives_nothing(tmp_path):
    server = ScriptedServer()
    server.always("GET", "/api/v1/im/bootstrap", httpx.ConnectError("down"))
    scanner, _, _ = _scanner(tmp_path, server)
    assert await scanner.scan(first_ever=True, since=None) == []
