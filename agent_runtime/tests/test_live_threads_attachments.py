"""The built-in runtime with threads and attachments end to end: runserver, local provider, scripted model.

The admin asks in a thread and the answer lands in that thread; an uploaded file reaches the model's prompt
as a workspace path the file tools can open, and the model's `send_file` makes a message with an attachment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent_runtime.tests.live_team import ADMIN_ID, MANAGER_ID, LiveTeam, start_team
from bots.tests.scripted_openai import (
    ScriptedOpenAI,
    agent,
    last_tool_contains,
    last_user_contains,
    text,
    tool_call,
)

pytestmark = [pytest.mark.live, pytest.mark.timeout(90)]

ATTACHMENT_LINE = re.compile(
    r"\[attachment: notes\.txt \(text/plain, 11 bytes\) at (\.csgclaw/attachments/\S+)\]"
)


@pytest.fixture
def provider() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI(models=["scripted-model"]) as scripted:
        yield scripted


@pytest.fixture
def team(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedOpenAI) -> Iterator[LiveTeam]:
    started = start_team(
        tmp_path_factory.mktemp("runtime-home"),
        provider,
        runtime_env={"CSGCLAW_RUNTIME_STREAM": "participant"},
    )
    try:
        started.wait_running(MANAGER_ID)
        started.wait_connected("manager")
        yield started
    finally:
        started.stop()
        print(started.describe())  # shown by pytest only when the test failed


def _contents(body: dict) -> list[str]:
    return [m.get("content") or "" for m in body.get("messages", []) if m.get("role") != "system"]


def _has_room_context(body: dict) -> bool:
    return any(
        content.startswith("[thread context]") and "Release is on Friday" in content
        for content in _contents(body)
    )


def _manager_workspace(team: LiveTeam) -> Path:
    """The workspace the server copies attachments into (threads-attachments.md §2.6)."""
    return team.home / "agents" / "manager" / "workspace"


def test_a_question_asked_in_a_thread_is_answered_in_that_thread(team, provider):
    provider.rule(agent(MANAGER_ID), last_user_contains("Release is on Friday"), answer=text("Noted."))
    provider.rule(
        agent(MANAGER_ID),
        last_user_contains("which day again?"),
        _has_room_context,
        answer=text("Friday, as said above."),
    )
    room = team.direct_room(MANAGER_ID)
    root = team.say(room, "Release is on Friday")
    team.wait_for(
        lambda: [m for m in team.messages_from(room, MANAGER_ID) if m["content"] == "Noted."],
        "the manager's top-level answer",
    )
    top_level_before = team.messages_from(room, MANAGER_ID)

    reply = team.post(
        "/api/v1/messages",
        {
            "room_id": room,
            "sender_id": ADMIN_ID,
            "content": "which day again?",
            "relates_to": {"rel_type": "m.thread", "event_id": root["id"]},
        },
    )
    assert reply.status_code == 201, reply.text

    def thread_answers() -> list[dict]:
        replies = team.get(f"/api/v1/rooms/{room}/threads/{root['id']}")["replies"]
        return [m for m in replies if m["sender_id"] == MANAGER_ID]

    (answer,) = team.wait_for(thread_answers, "the manager's answer in the thread")
    assert answer["content"] == "Friday, as said above."
    assert answer["relates_to"] == {"rel_type": "m.thread", "event_id": root["id"]}
    assert team.messages_from(room, MANAGER_ID) == top_level_before
    thread_call = provider.calls[-1].body
    assert "Chat ID: " + f"{room}/{root['id']}" in thread_call["messages"][0]["content"]
    assert "Noted." not in _contents(thread_call)  # the room's history is not the thread's
    sessions = _manager_workspace(team) / "sessions"
    assert (sessions / f"csgclaw_{room}_{root['id']}.jsonl").exists()
    assert provider.unmatched == []


def test_an_uploaded_file_reaches_the_prompt_and_send_file_answers_with_one(team, provider):
    manager = agent(MANAGER_ID)
    provider.rule(
        manager,
        lambda body: bool(ATTACHMENT_LINE.search(_contents(body)[-1])),
        answer=tool_call("write_file", path="out/reply.txt", content="reply body"),
    )
    provider.rule(
        manager,
        last_tool_contains("File written: out/reply.txt"),
        answer=tool_call("send_file", path="out/reply.txt", caption="here you go"),
    )
    provider.rule(manager, last_tool_contains("File reply.txt (10 bytes) sent to"), answer=text("Sent it."))
    room = team.direct_room(MANAGER_ID)
    payload = f'{{"room_id": "{room}", "sender_id": "{ADMIN_ID}", "content": "please check this file"}}'
    with team.client() as client:
        upload = client.post(
            "/api/v1/messages",
            data={"payload": payload},
            files={"files": ("notes.txt", b"hello notes", "text/plain")},
        )
    assert upload.status_code == 201, upload.text

    team.wait_for(
        lambda: any(m["content"] == "Sent it." for m in team.messages_from(room, MANAGER_ID)),
        "the manager's final answer",
        timeout=20,
    )
    first_call = next(call.body for call in provider.calls if manager(call.body))
    (workspace_path,) = ATTACHMENT_LINE.findall(_contents(first_call)[-1])
    assert workspace_path.startswith(f".csgclaw/attachments/{room}/{upload.json()['id']}/")
    assert (_manager_workspace(team) / workspace_path).read_bytes() == b"hello notes"

    (with_file,) = [m for m in team.messages_from(room, MANAGER_ID) if m.get("attachments")]
    assert with_file["content"] == "here you go"
    (attachment,) = with_file["attachments"]
    assert (attachment["name"], attachment["size_bytes"], attachment["media_type"]) == (
        "reply.txt",
        10,
        "text/plain",
    )
    download = httpx.get(team.base_url + attachment["download_url"], trust_env=False, timeout=10.0)
    assert download.status_code == 200 and download.content == b"reply body"
    assert provider.unmatched == []
