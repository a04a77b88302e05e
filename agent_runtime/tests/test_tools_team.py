"""Team tools and send_message against a fake RestClient: REST calls, texts and role selection."""

from __future__ import annotations

import json

import pytest

from agent_runtime.contracts import SendResult
from agent_runtime.tests.agent_fakes import FakeRest, make_settings
from agent_runtime.tools import ToolBox, team
from agent_runtime.tools.base import ToolContext


class Sends:
    def __init__(self):
        self.sent = []

    async def __call__(self, room_id, thread_root_id, text):
        self.sent.append((room_id, thread_root_id, text))
        return SendResult(message_id=f"msg-rt-{len(self.sent)}", ok=True)


@pytest.fixture
def sends():
    return Sends()


def context(tmp_path, rest, sends, **overrides):
    settings = make_settings(tmp_path, **overrides)
    return ToolContext(settings=settings, rest=rest, room_id="room-1", thread_root_id="msg-root", send=sends)


async def test_create_worker_waits_while_creating(tmp_path, sends):
    creating = {"id": "u-alice", "name": "alice", "role": "worker", "status": "creating", "description": ""}
    rest = FakeRest(
        {
            ("POST", "/api/v1/agents"): (201, creating),
            ("GET", "/api/v1/agents/u-alice"): [(200, creating), (200, {**creating, "status": "running"})],
        }
    )
    ctx = context(tmp_path, rest, sends)
    result = await team.create_worker(ctx, {"name": "alice", "description": "writes files"})
    assert json.loads(result) == {"id": "u-alice", "name": "alice", "role": "worker", "status": "running"}
    assert rest.calls[0] == ("POST", "/api/v1/agents", None, {"name": "alice", "description": "writes files"})
    assert [c[1] for c in rest.calls].count("/api/v1/agents/u-alice") == 2


async def test_create_worker_errors(tmp_path, sends):
    rest = FakeRest({("POST", "/api/v1/agents"): (400, 'agent name "alice" already exists\n')})
    box = ToolBox(make_settings(tmp_path))
    ctx = context(tmp_path, rest, sends)
    assert await box.call(ctx, "create_worker", '{"name":"alice"}') == (
        'Error: 400 agent name "alice" already exists'
    )
    failed = {"id": "u-bob", "status": "failed", "status_detail": "image pull failed"}
    rest = FakeRest({("POST", "/api/v1/agents"): (201, failed)})
    assert await team.create_worker(context(tmp_path, rest, sends), {"name": "bob"}) == (
        "Error: worker u-bob failed to start: image pull failed"
    )


async def test_assign_task_without_room_makes_a_room_and_mentions_the_worker(tmp_path, sends):
    rest = FakeRest(
        {
            ("GET", "/api/v1/agents/u-alice"): (200, {"id": "u-alice", "name": "alice"}),
            ("POST", "/api/v1/im/rooms"): (201, {"id": "room-9", "title": "Create hello.txt", "members": []}),
        }
    )
    ctx = context(tmp_path, rest, sends)
    result = await team.assign_task(
        ctx, {"worker_id": "u-alice", "task": "Create hello.txt\nthen report back."}
    )
    assert rest.calls[1][3] == {
        "title": "Create hello.txt",
        "creator_id": "u-manager",
        "member_ids": ["u-admin", "u-alice"],
    }
    assert sends.sent == [
        ("room-9", "", '<at user_id="u-alice">alice</at> Create hello.txt\nthen report back.')
    ]
    assert result == (
        'Task assigned to alice (u-alice) in room room-9 "Create hello.txt" (message msg-rt-1). '
        "Their report will arrive in that room."
    )


async def test_assign_task_title_is_cut_to_40_characters(tmp_path, sends):
    rest = FakeRest(
        {
            ("GET", "/api/v1/agents/u-alice"): (200, {"id": "u-alice", "name": "alice"}),
            ("POST", "/api/v1/im/rooms"): (201, {"id": "room-9", "title": "t"}),
        }
    )
    await team.assign_task(context(tmp_path, rest, sends), {"worker_id": "u-alice", "task": "y" * 60})
    assert rest.calls[1][3]["title"] == "y" * 40


async def test_assign_task_into_rooms(tmp_path, sends):
    agent = (200, {"id": "u-alice", "name": "alice"})
    rest = FakeRest(
        {
            ("GET", "/api/v1/agents/u-alice"): agent,
            ("POST", "/api/v1/rooms/invite"): (400, "cannot add members to direct room\n"),
        }
    )
    ctx = context(tmp_path, rest, sends)
    assert await team.assign_task(ctx, {"worker_id": "u-alice", "task": "t", "room_id": "room-d"}) == (
        "Error: room-d is a direct room; call assign_task without room_id"
    )
    rest = FakeRest(
        {
            ("GET", "/api/v1/agents/u-alice"): agent,
            ("POST", "/api/v1/rooms/invite"): (400, "no new users to invite\n"),
        }
    )
    rest.rooms["room-g"] = {"id": "room-g", "title": "Group"}
    result = await team.assign_task(
        context(tmp_path, rest, sends), {"worker_id": "u-alice", "task": "t", "room_id": "room-g"}
    )
    assert 'in room room-g "Group"' in result
    assert (
        await team.assign_task(ctx, {"worker_id": "u-nobody", "task": "t"})
        == 'Error: agent "u-nobody" not found'
    )


async def test_rooms_and_messages_are_compact(tmp_path, sends):
    rooms = [
        {
            "id": "room-1",
            "title": "a",
            "is_direct": True,
            "members": ["u-admin", "u-manager"],
            "messages": [],
        },
        {
            "id": "room-2",
            "title": "b",
            "is_direct": False,
            "members": ["u-admin", "u-bob"],
            "messages": [{"sender_id": "u-bob", "content": "z" * 300, "created_at": "t"}],
        },
    ]
    messages = [
        {"id": "m1", "sender_id": "u-admin", "kind": "event", "content": "room created", "created_at": "t1"},
        {"id": "m2", "sender_id": "u-admin", "kind": "message", "content": "q" * 600, "created_at": "t2"},
    ]
    rest = FakeRest({("GET", "/api/v1/rooms"): (200, rooms), ("GET", "/api/v1/messages"): (200, messages)})
    ctx = context(tmp_path, rest, sends)
    assert [r["id"] for r in json.loads(await team.list_rooms(ctx, {}))] == ["room-1"]
    every = json.loads(await team.list_rooms(ctx, {"all": True}))
    assert every[1]["last"] == {"sender_id": "u-bob", "excerpt": "z" * 120, "created_at": "t"}
    listed = json.loads(await team.list_messages(ctx, {"room_id": "room-2", "limit": 2}))
    assert listed[0]["content"] == "[event] room created" and len(listed[1]["content"]) == 500
    assert rest.calls[-1][2] == {"room_id": "room-2"}


async def test_send_message_tags_untagged_mentions(tmp_path, sends):
    rest = FakeRest(users={"u-alice": {"id": "u-alice", "name": "alice"}})
    ctx = context(tmp_path, rest, sends)
    assert await team.send_message(ctx, {"text": "hi", "mentions": ["u-alice"]}) == (
        "Message sent to room-1 (message msg-rt-1)"
    )
    await team.send_message(ctx, {"text": '<at user_id="u-alice">alice</at> again', "mentions": ["u-alice"]})
    await team.send_message(ctx, {"text": "elsewhere", "room_id": "room-2"})
    assert sends.sent == [
        ("room-1", "msg-root", '<at user_id="u-alice">alice</at> hi'),
        ("room-1", "msg-root", '<at user_id="u-alice">alice</at> again'),
        ("room-2", "", "elsewhere"),
    ]
    assert (
        await team.send_message(ctx, {"text": "x", "mentions": ["u-ghost"]})
        == 'Error: unknown user "u-ghost"'
    )


def tool_names(settings):
    return {schema["function"]["name"] for schema in ToolBox(settings).schemas}


def test_only_the_manager_gets_team_writing_tools(tmp_path):
    manager = tool_names(make_settings(tmp_path))
    worker = tool_names(make_settings(tmp_path, bot_id="u-alice", participant_id="pt-alice"))
    team_tools = {"create_worker", "assign_task", "create_room", "invite"}
    assert team_tools <= manager
    assert not team_tools & worker
    assert {
        "exec",
        "read_file",
        "list_agents",
        "list_rooms",
        "list_messages",
        "send_message",
        "web_fetch",
    } <= worker


async def test_toolbox_rejects_bad_calls(tmp_path, sends):
    box = ToolBox(make_settings(tmp_path))
    ctx = context(tmp_path, FakeRest(), sends)
    assert await box.call(ctx, "spawn", "{}") == 'Error: unknown tool "spawn"'
    assert (await box.call(ctx, "read_file", "[1]")).startswith("Error: invalid arguments: arguments must be")
    assert (await box.call(ctx, "read_file", "{bad")).startswith("Error: invalid arguments: ")
    assert (
        await box.call(ctx, "read_file", "{}")
        == 'Error: invalid arguments: missing required parameter "path"'
    )
    assert await box.call(ctx, "list_messages", '{"room_id":"r","limit":0}') == (
        'Error: invalid arguments: "limit" must be at least 1'
    )
    assert await box.call(ctx, "read_file", '{"path":"/etc/passwd"}') == (
        'Error: access denied: "/etc/passwd" is outside the workspace'
    )
    schema = box.schemas[0]
    assert schema["type"] == "function" and schema["function"]["parameters"]["required"] == ["command"]
