"""Session files: append, reload, torn lines, trimming by whole turns, compaction, sanitising (§4.3)."""

from __future__ import annotations

import json

from agent_runtime import history
from agent_runtime.history import SessionStore, sanitize, trim
from agent_runtime.tests.agent_fakes import make_settings


def session_of(settings, key="csgclaw:room-1"):
    return SessionStore(settings).get(key, room_id="room-1", thread_root_id="", chat_type="direct")


def tool_turn(session, n):
    session.append({"role": "user", "content": f"q{n}"})
    call = {"id": f"c{n}", "type": "function", "function": {"name": "exec", "arguments": "{}"}}
    session.append({"role": "assistant", "content": "", "tool_calls": [call]})
    session.append({"role": "tool", "content": "out", "tool_call_id": f"c{n}", "name": "exec"})
    session.append({"role": "assistant", "content": f"a{n}"})


def test_file_names_and_meta(tmp_path):
    settings = make_settings(tmp_path)
    session = SessionStore(settings).get("csgclaw:room-1/msg-9", room_id="room-1", thread_root_id="msg-9")
    session.append({"role": "user", "content": "hi"})
    assert session.path.name == "csgclaw_room-1_msg-9.jsonl"
    meta = json.loads(session.meta_path.read_text())
    assert set(meta) == {
        "key",
        "room_id",
        "thread_root_id",
        "chat_type",
        "title",
        "skip",
        "dropped",
        "origins",
        "created_at",
        "updated_at",
    }
    assert meta["room_id"] == "room-1" and meta["updated_at"].endswith("Z")


def test_a_restart_reloads_the_same_messages_and_drops_a_torn_line(tmp_path):
    settings = make_settings(tmp_path)
    session = session_of(settings)
    tool_turn(session, 1)
    with open(session.path, "a") as handle:
        handle.write('{"role": "user", "cont')
    reloaded = session_of(settings)
    assert reloaded.messages == session.messages
    reloaded.append({"role": "user", "content": "after"})
    assert [m["content"] for m in session_of(settings).messages][-1] == "after"


def test_tool_groups_are_never_split_and_the_41st_message_drops_the_oldest_turn(tmp_path):
    session = session_of(make_settings(tmp_path))
    for n in range(10):
        tool_turn(session, n)
    session.append({"role": "user", "content": "now"})
    assert trim(session, 40, 10**9) == 40
    assert len(session.messages) == 41
    session.messages.insert(0, {"role": "assistant", "content": "note"})
    start = trim(session, 41, 10**9)
    assert start == 40 and session.messages[0] == {
        "role": "user",
        "content": "q0",
        "ts": session.messages[0]["ts"],
    }
    session.append({"role": "user", "content": "more"})
    start = trim(session, len(session.messages) - 1, 10**9)
    assert session.messages[0]["content"] == "q1" and start == len(session.messages) - 1
    assert session.meta["dropped"] == 5


def test_the_token_budget_trims_too_and_the_current_turn_stays(tmp_path):
    session = session_of(make_settings(tmp_path))
    for _ in range(3):
        session.append({"role": "user", "content": "x" * 1000})
        session.append({"role": "assistant", "content": "y" * 1000})
    session.append({"role": "user", "content": "z" * 100_000})
    start = trim(session, 6, 2000)
    assert start == 0 and len(session.messages) == 1


def test_compaction_keeps_content(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "COMPACT_AFTER_SKIPPED", 4)
    settings = make_settings(tmp_path)
    session = session_of(settings)
    for n in range(4):
        tool_turn(session, n)
    session.drop_front(4)
    assert session.meta["skip"] == 4
    session.drop_front(4)
    assert session.meta["skip"] == 0 and session.meta["dropped"] == 8
    lines = session.path.read_text().splitlines()
    assert [json.loads(line)["content"] for line in lines] == [m["content"] for m in session.messages]
    assert session_of(settings).messages == session.messages


def test_sanitize_removes_orphans_and_unanswered_calls():
    call = {"id": "c1", "type": "function", "function": {"name": "exec", "arguments": "{}"}}
    messages = [
        {"role": "tool", "content": "orphan", "tool_call_id": "c0"},
        {"role": "user", "content": "q", "ts": "t", "message_id": "m"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "thinking", "tool_calls": [call]},
        {"role": "tool", "content": "out", "tool_call_id": "c1"},
    ]
    assert sanitize(messages) == [
        {"role": "user", "content": "q"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "thinking", "tool_calls": [call]},
        {"role": "tool", "content": "out", "tool_call_id": "c1"},
    ]


def test_token_estimate():
    messages = [{"role": "user", "content": "a" * 88}]
    assert history.estimate_tokens(messages) == 40
