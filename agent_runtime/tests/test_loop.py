"""The agent loop against a scripted model (respx) and fake ports: turns, tools, steering, limits (§4)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from agent_runtime.loop import AgentLoop
from agent_runtime.tests.agent_fakes import (
    FakeJournal,
    FakeOutbox,
    FakeRest,
    FakeStatus,
    inbound,
    make_settings,
    settle,
)
from agent_runtime.tests.model_script import LLM_URL, Script, text, tool_call
from agent_runtime.turn import EMPTY_TEXT, LIMIT_TEXT


class Harness:
    def __init__(self, tmp_path, script, rest=None, **overrides):
        self.settings = make_settings(tmp_path, **overrides)
        self.outbox, self.journal, self.status = FakeOutbox(), FakeJournal(), FakeStatus()
        self.rest = rest or FakeRest({("GET", "/api/v1/agents/u-manager"): (200, {"name": "manager"})})
        self.script = script
        self.loop = AgentLoop(
            self.settings, outbox=self.outbox, journal=self.journal, rest=self.rest, status=self.status
        )
        self.task = None

    async def __aenter__(self):
        self.mock = respx.mock(assert_all_called=False)
        self.mock.__enter__()
        self.mock.post(LLM_URL).mock(side_effect=self.script)
        self.task = asyncio.create_task(self.loop.run())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.loop.close()
        self.mock.__exit__(None, None, None)

    async def done(self, *ids):
        await settle(lambda: set(ids) <= set(self.journal.done_ids()))


async def test_tool_call_then_final_answer(tmp_path):
    script = Script(tool_call("write_file", "Writing it.", path="a.txt", content="hi"), text("Done."))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1", text="write a.txt"))
        await h.done("msg-1")
    assert (h.settings.workspace / "a.txt").read_text() == "hi"
    assert h.outbox.texts() == ["Done."]
    second = script.last_messages()
    assert (
        second[0]["role"] == "system"
        and "## Current Sender\nCurrent sender: admin (ID: u-admin)" in second[0]["content"]
    )
    assert [m["role"] for m in second[1:]] == ["user", "assistant", "tool"]
    assert second[3] == {
        "role": "tool",
        "content": "File written: a.txt",
        "tool_call_id": "call-write_file",
        "name": "write_file",
    }
    assert script.requests[0]["tools"] and script.requests[0]["tool_choice"] == "auto"
    assert h.journal.events == [("start", "msg-1", "msg-1"), ("done", "msg-1", "")]
    assert h.status.fields == {"turns_running": 0, "queued": 0, "llm_calls": 2, "tools_rejected": False}


async def test_reply_ids_are_deterministic_per_turn_room_and_index(tmp_path):
    script = Script(tool_call("send_message", text="working on it"), text("Done."))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
    ids = [m["id"] for m in h.outbox.sent]
    expected = [
        h.outbox.message_id(turn_id="msg-1", room_id="room-1", thread_root_id="", index=i) for i in (0, 1)
    ]
    assert ids == expected


async def test_steering_joins_the_running_turn_before_its_next_call(tmp_path):
    gate = asyncio.Event()
    script = Script((gate, tool_call("list_dir")), text("Both handled."))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1", text="first"))
        await settle(lambda: len(script.requests) == 1)
        h.loop.submit(inbound("msg-2", text="also this"))
        gate.set()
        await h.done("msg-1", "msg-2")
    users = [m["content"] for m in script.last_messages() if m["role"] == "user"]
    assert users == ["first", "also this"]
    assert h.outbox.texts() == ["Both handled."]
    assert ("start", "msg-2", "msg-1") in h.journal.events


class HeldOutbox(FakeOutbox):
    def __init__(self, gate):
        super().__init__()
        self.gate = gate
        self.waiting = False

    async def send(self, **fields):
        self.waiting = True
        await self.gate.wait()
        return await super().send(**fields)


async def test_a_message_after_the_final_answer_starts_the_next_turn(tmp_path):
    gate = asyncio.Event()
    script = Script(text("one"), text("two"))
    async with Harness(tmp_path, script) as h:
        h.loop.outbox = h.outbox = HeldOutbox(gate)
        h.loop.submit(inbound("msg-1", text="first"))
        await settle(lambda: h.outbox.waiting)
        h.loop.submit(inbound("msg-2", text="second"))
        gate.set()
        await h.done("msg-1", "msg-2")
    assert h.outbox.texts() == ["one", "two"]
    assert [m["content"] for m in script.last_messages() if m["role"] != "system"] == [
        "first",
        "one",
        "second",
    ]
    assert ("start", "msg-2", "msg-2") in h.journal.events


async def test_tool_iteration_limit(tmp_path):
    script = Script(*[tool_call("list_dir", "", f"c{i}") for i in range(3)])
    async with Harness(tmp_path, script, max_tool_iterations=3) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
    assert h.outbox.texts() == [LIMIT_TEXT]
    assert len(script.requests) == 3


async def test_blank_answer_gives_the_empty_text_unless_it_already_sent_here(tmp_path):
    script = Script(text("  "), tool_call("send_message", text="sent here"), text(""))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
        h.loop.submit(inbound("msg-2"))
        await h.done("msg-2")
    assert h.outbox.texts() == [EMPTY_TEXT, "sent here"]


async def test_think_blocks_are_stripped(tmp_path):
    script = Script(text("<think>hmm</think>\nAnswer."), text("<think>never closed"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
        h.loop.submit(inbound("msg-2"))
        await h.done("msg-2")
    assert h.outbox.texts() == ["Answer.", EMPTY_TEXT]


@pytest.mark.timeout(10)
async def test_two_rooms_run_in_parallel_and_one_room_never_overlaps(tmp_path):
    gate = asyncio.Event()
    script = Script((gate, text("a1")), (gate, text("b1")), text("a2"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-a1", room_id="room-a"))
        h.loop.submit(inbound("msg-b1", room_id="room-b"))
        await settle(lambda: len(script.requests) == 2)
        assert h.status.fields["turns_running"] == 2
        gate.set()
        await h.done("msg-a1", "msg-b1")
        h.loop.submit(inbound("msg-a2", room_id="room-a"))
        await h.done("msg-a2")
    assert sorted(h.outbox.texts()) == ["a1", "a2", "b1"]


async def test_parallel_turns_are_capped(tmp_path):
    gate = asyncio.Event()
    script = Script(*[(gate, text(f"r{i}")) for i in range(3)])
    async with Harness(tmp_path, script, max_parallel_turns=2) as h:
        for i in range(3):
            h.loop.submit(inbound(f"msg-{i}", room_id=f"room-{i}"))
        await settle(lambda: len(script.requests) == 2)
        await asyncio.sleep(0.05)
        assert len(script.requests) == 2 and h.status.fields["queued"] == 1
        gate.set()
        await h.done("msg-0", "msg-1", "msg-2")


async def test_llm_failure_is_reported_in_the_room(tmp_path):
    script = Script(*[httpx.Response(500, json={"error": {"message": "boom"}})] * 3)
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
    assert len(script.requests) == 3
    assert h.outbox.texts() == ["Error processing message: LLM call failed: HTTP 500: boom"]


async def test_tools_rejected_switches_to_plain_chat_for_good(tmp_path):
    rejection = httpx.Response(400, json={"error": {"message": "tools are not supported by this model"}})
    script = Script(rejection, text("plain"), text("still plain"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
        h.loop.submit(inbound("msg-2"))
        await h.done("msg-2")
    assert "tools" in script.requests[0]
    assert "tools" not in script.requests[1] and "tools" not in script.requests[2]
    system = script.requests[1]["messages"][0]["content"]
    assert "1. **Be helpful and accurate** - Briefly explain what you're doing." in system
    assert "ALWAYS use tools" not in system
    assert h.status.fields["tools_rejected"] is True


async def test_context_error_sends_a_smaller_request(tmp_path):
    script = Script(*[text(f"answer {i}") for i in range(3)])
    async with Harness(tmp_path, script) as h:
        for i in range(3):
            h.loop.submit(inbound(f"msg-{i}", text=f"question {i} " + "x" * 200))
            await h.done(f"msg-{i}")
        script.answers = [httpx.Response(400, text="context_length_exceeded: too long"), text("ok")]
        h.loop.submit(inbound("msg-9", text="last"))
        await h.done("msg-9")
    big, small = script.requests[-2:]
    assert len(json.dumps(small)) < len(json.dumps(big))
    assert small["max_tokens"] == big["max_tokens"] // 2
    assert small["messages"][-1]["content"] == "last"


async def test_worker_report_to_the_manager_is_tagged(tmp_path):
    script = Script(text("Done: hello.txt"), text('<at user_id="pt-manager">manager</at> done again'))
    overrides = {
        "bot_id": "u-alice",
        "participant_id": "pt-alice",
        "llm_base_url": "http://llm.test/api/bots/u-manager/llm",
    }
    rest = FakeRest()
    async with Harness(tmp_path, script, rest=rest, **overrides) as h:
        task = dict(chat_type="group", sender_id="u-manager", sender_name="manager", sender_role="manager")
        h.loop.submit(inbound("msg-1", room_id="room-t", **task))
        await h.done("msg-1")
        h.loop.submit(inbound("msg-2", room_id="room-t", **task))
        await h.done("msg-2")
        h.loop.submit(inbound("msg-3", room_id="room-t", chat_type="group"))
        await h.done("msg-3")
    assert h.outbox.texts()[:2] == [
        '<at user_id="u-manager">manager</at> Done: hello.txt',
        '<at user_id="pt-manager">manager</at> done again',
    ]
    assert not h.outbox.texts()[2].startswith("<at")


async def test_tool_feedback_is_sent_before_each_call_and_mentions_no_one(tmp_path):
    script = Script(
        tool_call("send_message", "Telling alice.", text='<at user_id="u-alice">alice</at> hi'), text("ok")
    )
    rest = FakeRest({("GET", "/api/v1/agents/u-manager"): (200, {"name": "manager"})})
    async with Harness(tmp_path, script, rest=rest, tool_feedback_enabled=True) as h:
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
    feedback = h.outbox.texts()[0]
    assert feedback.startswith("\U0001f527 `send_message`\nTelling alice.\n```json\n")
    assert "<at" not in feedback and "@\u2060alice" in feedback


async def test_assign_task_links_the_new_room_to_its_origin(tmp_path):
    rest = FakeRest(
        {
            ("GET", "/api/v1/agents/u-manager"): (200, {"name": "manager"}),
            ("GET", "/api/v1/agents/u-alice"): (200, {"id": "u-alice", "name": "alice"}),
            ("POST", "/api/v1/im/rooms"): (201, {"id": "room-task", "title": "Write hello"}),
        }
    )
    rest.rooms["room-1"] = {
        "id": "room-1",
        "title": "manager",
        "is_direct": True,
        "members": ["u-admin", "u-manager"],
    }
    script = Script(
        tool_call("assign_task", worker_id="u-alice", task="Write hello"),
        text("I asked alice."),
        text("Thanks."),
    )
    async with Harness(tmp_path, script, rest=rest) as h:
        h.loop.submit(inbound("msg-1", text="please write hello"))
        await h.done("msg-1")
        report = dict(chat_type="group", sender_id="u-alice", sender_name="alice", sender_role="worker")
        h.loop.submit(inbound("msg-2", room_id="room-task", text="Done: hello", **report))
        await h.done("msg-2")
    meta = json.loads((h.settings.workspace / "sessions" / "csgclaw_room-task.meta.json").read_text())
    assert meta["room_id"] == "room-task" and meta["origins"][0]["room_id"] == "room-1"
    assert meta["origins"][0]["excerpt"] == "please write hello"
    assert meta["updated_at"].endswith("Z") and len(meta["updated_at"]) == 24
    report_call = script.last_messages()
    assert report_call[1] == {"role": "assistant", "content": '<at user_id="u-alice">alice</at> Write hello'}
    assert (
        'This room was opened from room-1 (direct with admin) to handle: "please write hello". '
        'Report the outcome there with send_message(room_id="room-1").'
    ) in report_call[0]["content"]


async def test_rerun_after_a_crash_repeats_history_and_ids(tmp_path):
    script = Script(text("first run"), text("second run"))
    async with Harness(tmp_path, script) as h:
        h.loop.submit(inbound("msg-1", text="hello"))
        await h.done("msg-1")
    again = Harness(tmp_path, script)
    async with again as h2:
        h2.loop.submit(inbound("msg-1", text="hello"))
        await h2.done("msg-1")
    assert script.requests[0]["messages"][1:] == script.requests[1]["messages"][1:]
    assert h.outbox.sent[0]["id"] == h2.outbox.sent[0]["id"]


async def test_close_cancels_running_turns_without_done(tmp_path):
    gate = asyncio.Event()
    script = Script((gate, text("never")))
    h = Harness(tmp_path, script)
    async with h:
        h.loop.submit(inbound("msg-1"))
        await settle(lambda: len(script.requests) == 1)
        await h.loop.close()
    assert h.journal.done_ids() == [] and h.outbox.sent == []


async def test_turn_timeout_sends_the_error(tmp_path):
    gate = asyncio.Event()
    script = Script((gate, text("late")))
    async with Harness(tmp_path, script) as h:
        h.loop.turn_timeout = 0.1
        h.loop.submit(inbound("msg-1"))
        await h.done("msg-1")
    assert h.outbox.texts() == ["Error processing message: turn timed out after 0.1 s"]
