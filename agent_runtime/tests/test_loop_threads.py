"""Threads and files in the agent loop: one history per thread, its room context, send_file (§4.1)."""

from __future__ import annotations

import os

from agent_runtime.contracts import OutboundFile
from agent_runtime.tests.agent_fakes import inbound
from agent_runtime.tests.model_script import Script, text, tool_call
from agent_runtime.tests.test_loop import Harness

CONTEXT = '[thread context] root: "plan the release", 2 messages\nEarlier room messages …\n- u-admin: Friday'


def _in_thread(message_id: str, content: str, **fields):
    return inbound(message_id, text=content, thread_root_id="msg-root", thread_context=CONTEXT, **fields)


def _turn_messages(request):
    return [(m["role"], m["content"]) for m in request["messages"][1:]]


async def test_a_thread_is_its_own_conversation_and_replies_stay_in_it(tmp_path):
    script = Script(text("room answer"), text("thread answer 1"), text("thread answer 2"), text("room again"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1", text="in the room"))
        await h.done("msg-1")
        h.loop.submit(_in_thread("msg-t1", "what is the plan?"))
        await h.done("msg-t1")
        h.loop.submit(_in_thread("msg-t2", "and after that?"))
        await h.done("msg-t2")
        h.loop.submit(inbound("msg-2", text="back in the room"))
        await h.done("msg-2")
    assert _turn_messages(script.requests[1]) == [("user", CONTEXT), ("user", "what is the plan?")]
    assert _turn_messages(script.requests[2]) == [
        ("user", CONTEXT),
        ("user", "what is the plan?"),
        ("assistant", "thread answer 1"),
        ("user", "and after that?"),
    ]
    assert _turn_messages(script.requests[3]) == [
        ("user", "in the room"),
        ("assistant", "room answer"),
        ("user", "back in the room"),
    ]
    assert "Chat ID: room-1/msg-root" in script.requests[1]["messages"][0]["content"]
    assert [(m["thread_root_id"], m["text"]) for m in h.outbox.sent] == [
        ("", "room answer"),
        ("msg-root", "thread answer 1"),
        ("msg-root", "thread answer 2"),
        ("", "room again"),
    ]
    sessions = h.settings.workspace / "sessions"
    assert (sessions / "csgclaw_room-1_msg-root.jsonl").exists() and (
        sessions / "csgclaw_room-1.jsonl"
    ).exists()


async def test_a_thread_turn_run_again_after_a_crash_keeps_the_context_once(tmp_path):
    async with Harness(tmp_path, Script(text("first run"))) as h:
        h.loop.submit(_in_thread("msg-t1", "what is the plan?"))
        await h.done("msg-t1")
    script = Script(text("second run"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(_in_thread("msg-t1", "what is the plan?"))
        await h.done("msg-t1")
    assert _turn_messages(script.requests[0]) == [("user", CONTEXT), ("user", "what is the plan?")]


async def test_send_file_posts_into_the_thread_and_the_model_reads_the_stored_id(tmp_path):
    script = Script(tool_call("send_file", "Sending it.", path="report.md", caption="Here it is."), text(""))
    async with Harness(tmp_path, script) as h:
        (h.settings.workspace / "report.md").write_text("# Report\n")
        h.loop.submit(_in_thread("msg-t1", "send me the report"))
        await h.done("msg-t1")
    (sent,) = h.outbox.sent
    real = os.path.realpath(h.settings.workspace / "report.md")
    assert sent["file"] == OutboundFile(path=real, name="report.md", media_type="text/markdown", size=9)
    assert (sent["thread_root_id"], sent["text"]) == ("msg-root", "Here it is.")
    tool_result = script.last_messages()[-1]
    assert tool_result["content"] == f"File report.md (9 bytes) sent to room-1 (message {sent['id']})"
