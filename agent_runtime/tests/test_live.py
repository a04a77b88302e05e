"""The built-in runtime end to end (builtin-runtime.md §8 "Live"): runserver, local provider, scripted model.

Every message travels the routes any PicoClaw uses: the admin posts over REST, the runtime reads its
stream, calls the LLM bridge and posts through the send route.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_runtime.tests.live_team import (
    ACCESS_TOKEN,
    ADMIN_ID,
    MANAGER_ID,
    PROVIDER_KEY,
    LiveTeam,
    start_team,
)
from bots.tests.scripted_openai import (
    ScriptedOpenAI,
    agent,
    has_tools,
    hold,
    last_tool_contains,
    last_user_contains,
    status,
    text,
    tool_call,
)

pytestmark = [pytest.mark.live, pytest.mark.timeout(90)]

STREAM_MODES = ("bot", "participant")
TEAM_TASK = "Create projects/demo/hello.txt containing hello world and report back."


def _bwrap_works() -> bool:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], capture_output=True, check=False)
    return probe.returncode == 0


ISOLATIONS = [
    "none",
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap is not installed or cannot run here"),
    ),
]


@pytest.fixture
def provider() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI(models=["scripted-model"]) as scripted:
        yield scripted


@pytest.fixture
def team_factory(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedOpenAI) -> Iterator:
    teams: list[LiveTeam] = []

    def start(**kwargs) -> LiveTeam:
        team = start_team(tmp_path_factory.mktemp("runtime-home"), provider, **kwargs)
        teams.append(team)
        return team

    yield start
    for team in teams:
        team.stop()
        print(team.describe())  # shown by pytest only when the test failed


def _ids(messages: list[dict]) -> list[str]:
    return [message["id"] for message in messages]


def _answer_count(team: LiveTeam, room: str, content: str) -> int:
    return sum(1 for message in team.messages_from(room, MANAGER_ID) if message["content"] == content)


# --- (a) a direct answer, and gating in a group --------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_manager_answers_the_admin_once(team_factory, provider, isolation):
    provider.rule(agent(MANAGER_ID), last_user_contains("hello"), answer=text("hi admin"))
    team = team_factory(isolation=isolation)
    team.wait_running(MANAGER_ID)
    room = team.direct_room(MANAGER_ID)

    team.say(room, "hello")

    team.wait_for(lambda: _answer_count(team, room, "hi admin") == 1, "the manager's answer", timeout=5)
    time.sleep(3)
    assert _answer_count(team, room, "hi admin") == 1
    assert provider.unmatched == []
    detail = team.agent(MANAGER_ID).get("status_detail", "")
    assert detail.startswith("built-in runtime")
    if isolation == "none":
        assert "running without isolation" not in detail  # "none" is asked for, not a fallback
    log = team.gateway_log("manager")
    assert "stream connected" in log
    assert ACCESS_TOKEN not in log


def test_group_messages_wake_the_manager_only_when_mentioned(team_factory, provider):
    provider.rule(agent("u-alice"), answer=text("Noted."), repeat=True)
    provider.rule(agent(MANAGER_ID), last_user_contains("status please"), answer=text("all good"))
    team = team_factory()
    team.wait_running(MANAGER_ID)
    created = team.post("/api/v1/agents", {"name": "alice", "description": "writes files"})
    assert created.status_code in (200, 201), created.text
    team.wait_running("u-alice")
    room = team.post(
        "/api/v1/im/rooms", {"title": "crew", "creator_id": ADMIN_ID, "member_ids": [MANAGER_ID, "u-alice"]}
    ).json()["id"]

    team.say(room, "status please, anyone")
    time.sleep(3)
    manager_calls = [call for call in provider.calls if agent(MANAGER_ID)(call.body)]
    assert manager_calls == []
    assert team.messages_from(room, MANAGER_ID) == []

    team.say(room, '<at user_id="u-manager">manager</at> status please')
    team.wait_for(lambda: _answer_count(team, room, "all good") == 1, "the mentioned manager's answer")
    assert provider.unmatched == []


# --- (b) the team flow ---------------------------------------------------------------------------------


def _script_team_flow(provider: ScriptedOpenAI, direct_room: Callable[[], str]) -> None:
    manager, alice = agent(MANAGER_ID), agent("u-alice")
    provider.rule(
        manager,
        last_user_contains("write hello.txt in projects/demo"),
        answer=tool_call("create_worker", name="alice", description="writes files"),
    )
    provider.rule(
        manager,
        last_tool_contains("u-alice"),
        has_tools(),
        answer=tool_call("assign_task", worker_id="u-alice", task=TEAM_TASK),
    )
    provider.rule(manager, last_tool_contains("Task assigned to alice"), answer=text("I asked alice."))
    provider.rule(alice, last_user_contains("Write this down in your memory"), answer=text("Noted."))
    provider.rule(
        alice, last_user_contains(TEAM_TASK), answer=tool_call("exec", command="mkdir -p projects/demo")
    )
    provider.rule(
        alice,
        last_tool_contains("(no output)"),
        answer=tool_call("write_file", path="projects/demo/hello.txt", content="hello world"),
    )
    provider.rule(alice, last_tool_contains("File written"), answer=text("Done: projects/demo/hello.txt"))
    provider.rule(
        manager,
        last_user_contains("Done: projects/demo/hello.txt"),
        answer=lambda: tool_call(
            "send_message", room_id=direct_room(), text="alice wrote projects/demo/hello.txt"
        ),
    )
    provider.rule(manager, last_tool_contains("Message sent to"), answer=text("Thanks."))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("connect_delay", ["0", "1"])
def test_the_manager_delegates_to_a_worker_who_reports_back(team_factory, provider, connect_delay):
    rooms: dict[str, str] = {}
    _script_team_flow(provider, lambda: rooms["direct"])
    team = team_factory(runtime_env={"CSGCLAW_RUNTIME_TEST_CONNECT_DELAY": connect_delay})
    team.wait_running(MANAGER_ID)
    rooms["direct"] = team.direct_room(MANAGER_ID)

    team.say(rooms["direct"], "write hello.txt in projects/demo")

    summary = "alice wrote projects/demo/hello.txt"
    team.wait_for(
        lambda: any(m["content"] == summary for m in team.messages_from(rooms["direct"], MANAGER_ID)),
        "the manager's summary in the direct room",
        timeout=60,
    )
    assert (team.home / "projects" / "demo" / "hello.txt").read_text() == "hello world"
    task_rooms = [
        room
        for room in team.get("/api/v1/rooms")
        if not room["is_direct"] and "u-alice" in room["members"] and MANAGER_ID in room["members"]
    ]
    assert len(task_rooms) == 1
    task_room = task_rooms[0]
    assert task_room["members"] == [MANAGER_ID, ADMIN_ID, "u-alice"]
    task_messages = [m for m in team.messages(task_room["id"]) if m["kind"] == "message"]
    # The manager's other messages there are its tool feedback and its closing "Thanks.".
    assignment = [m for m in task_messages if m["sender_id"] == MANAGER_ID and TEAM_TASK in m["content"]]
    assert len(assignment) == 1 and assignment[0]["mentions"] == ["u-alice"]
    team.wait_for(
        lambda: any(m["content"] == "Thanks." for m in team.messages_from(task_room["id"], MANAGER_ID)),
        "the manager's closing answer in the task room",
    )
    reports = [m for m in task_messages if m["sender_id"] == "u-alice" and "Done:" in m["content"]]
    assert len(reports) == 1
    assert reports[0]["content"].startswith('<at user_id="u-manager">')
    assert team.messages_from(rooms["direct"], MANAGER_ID)[-1]["content"] == summary
    alice_direct = team.direct_room("u-alice")
    assert [m["content"] for m in team.messages_from(alice_direct, "u-alice")] == [
        "Bootstrap room created for admin and alice.",
        "Noted.",
    ]
    every_id = [m["id"] for room in team.get("/api/v1/rooms") for m in team.messages(room["id"])]
    assert len(every_id) == len(set(every_id))
    worker_requests = [call.body for call in provider.calls if agent("u-alice")(call.body)]
    worker_tools = {tool["function"]["name"] for body in worker_requests for tool in body.get("tools", [])}
    assert "create_worker" not in worker_tools and "assign_task" not in worker_tools
    time.sleep(2)
    assert provider.unmatched == []


# --- (c) kill -9 mid-turn, and a crash right after the reply -------------------------------------------


def _kill_runtime(team: LiveTeam, slug: str) -> None:
    os.killpg(team.box_record(slug)["pid"], signal.SIGKILL)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_runtime_killed_mid_turn_answers_each_message_once_after_restart(team_factory, provider, mode):
    release = threading.Event()
    provider.rule(agent(MANAGER_ID), last_user_contains("m1"), answer=hold(release, text("answer m1")))
    provider.rule(agent(MANAGER_ID), last_user_contains("m1"), answer=text("answer m1"))
    provider.rule(agent(MANAGER_ID), last_user_contains("m2"), answer=text("answer m2"))
    team = team_factory(runtime_env={"CSGCLAW_RUNTIME_STREAM": mode})
    team.wait_running(MANAGER_ID)
    team.wait_connected("manager")
    room = team.direct_room(MANAGER_ID)

    team.say(room, "m1")
    provider.wait_for_calls(1)
    _kill_runtime(team, "manager")
    team.say(room, "m2")
    release.set()
    started = team.post(f"/api/v1/agents/{MANAGER_ID}/start", {})
    assert started.status_code == 200, started.text

    team.wait_for(
        lambda: _answer_count(team, room, "answer m1") == 1 and _answer_count(team, room, "answer m2") == 1,
        "one answer to m1 and one to m2",
        timeout=15,
    )
    answers = [
        m["content"] for m in team.messages_from(room, MANAGER_ID) if m["content"].startswith("answer")
    ]
    assert answers == ["answer m1", "answer m2"]
    time.sleep(3)
    assert _answer_count(team, room, "answer m1") == 1 and _answer_count(team, room, "answer m2") == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_crash_right_after_the_reply_reruns_the_turn_without_a_second_reply(team_factory, provider, mode):
    provider.rule(agent(MANAGER_ID), last_user_contains("once"), answer=text("only once"), repeat=True)
    team = team_factory(
        runtime_env={"CSGCLAW_RUNTIME_STREAM": mode, "CSGCLAW_RUNTIME_TEST_CRASH": "after_reply_send"}
    )
    team.wait_running(MANAGER_ID)
    team.wait_connected("manager")
    room = team.direct_room(MANAGER_ID)

    team.say(room, "once")
    team.wait_for(lambda: _answer_count(team, room, "only once") == 1, "the first reply")
    crashed = team.home / "agents" / "manager" / "workspace" / "state" / "builtin-runtime" / "test-crash-done"
    team.wait_for(crashed.exists, "the crash", timeout=10)
    # The launcher restarts a crashed runtime by itself; a start request meanwhile changes nothing.
    assert team.post(f"/api/v1/agents/{MANAGER_ID}/start", {}).status_code == 200

    provider.wait_for_calls(2, timeout=15)
    time.sleep(2)
    replies = [m for m in team.messages_from(room, MANAGER_ID) if m["content"] == "only once"]
    assert len(replies) == 1
    # The participant send stores the runtime's id; the REST send keeps it as the client id.
    stored_id = replies[0]["id"] if mode == "participant" else replies[0]["client_msg_id"]
    assert stored_id.startswith("msg-rt-")


@pytest.mark.timeout(120)
def test_a_runtime_that_dies_comes_back_by_itself_and_answers(team_factory, provider):
    provider.rule(agent(MANAGER_ID), last_user_contains("still there?"), answer=text("yes"))
    team = team_factory()
    team.wait_running(MANAGER_ID)
    team.wait_connected("manager")
    first = team.runtime_pid("manager")

    os.kill(first, signal.SIGKILL)
    team.wait_for(lambda: team.runtime_pid("manager") not in (None, first), "a new runtime process")
    room = team.direct_room(MANAGER_ID)
    team.say(room, "still there?")

    team.wait_for(lambda: _answer_count(team, room, "yes") == 1, "the restarted runtime's answer")
    assert "runtime exited with code 137; restarting in" in team.gateway_log("manager")
    assert team.agent(MANAGER_ID)["status"] == "running"


# --- small local models -------------------------------------------------------------------------------


def test_a_model_that_rejects_tools_gets_plain_chat(team_factory, provider):
    provider.rule(
        has_tools(), answer=status(400, "tools is not supported by this model"), repeat=True, name="tools"
    )
    provider.rule(has_tools(False), last_user_contains("plain"), answer=text("plain answer"))
    team = team_factory()
    team.wait_running(MANAGER_ID)
    room = team.direct_room(MANAGER_ID)

    team.say(room, "plain please")

    team.wait_for(lambda: _answer_count(team, room, "plain answer") == 1, "the plain-chat answer")
    assert [call.rule for call in provider.calls] == ["tools", "rule 2"]
    assert provider.unmatched == []


def test_a_failing_provider_gives_one_short_error_message_in_the_room(team_factory, provider):
    provider.rule(answer=status(500, "the model server fell over"), repeat=True)
    team = team_factory()
    team.wait_running(MANAGER_ID)
    room = team.direct_room(MANAGER_ID)

    team.say(room, "anyone?")

    errors = team.wait_for(
        lambda: [
            m for m in team.messages_from(room, MANAGER_ID) if m["content"].startswith("Error processing")
        ],
        "the error message",
    )
    assert [m["content"] for m in errors] == [
        "Error processing message: LLM call failed: HTTP 500: the model server fell over"
    ]
    assert len(provider.calls) == 3  # the first call and its two retries


# --- (d) messages sent before the runtime connected ----------------------------------------------------


@pytest.mark.parametrize("mode", STREAM_MODES)
def test_a_message_sent_before_the_runtime_connected_is_answered_once(team_factory, provider, mode):
    provider.rule(agent(MANAGER_ID), last_user_contains("early"), answer=text("seen early"))
    team = team_factory(
        runtime_env={"CSGCLAW_RUNTIME_STREAM": mode, "CSGCLAW_RUNTIME_TEST_CONNECT_DELAY": "2"}
    )
    team.wait_running(MANAGER_ID)
    room = team.direct_room(MANAGER_ID)

    team.say(room, "early")

    team.wait_for(lambda: _answer_count(team, room, "seen early") == 1, "the answer to early", timeout=15)
    time.sleep(3)
    assert _answer_count(team, room, "seen early") == 1
    assert provider.unmatched == []


def test_no_provider_key_reaches_the_box(team_factory, provider):
    team = team_factory()
    team.wait_running(MANAGER_ID)
    team.wait_connected("manager")
    leaked = [
        path
        for path in Path(team.home, "agents").rglob("*")
        if path.is_file() and PROVIDER_KEY.encode() in path.read_bytes()
    ]
    assert leaked == []
    environ = Path(f"/proc/{team.box_record('manager')['pid']}/environ").read_bytes()
    assert PROVIDER_KEY.encode() not in environ


# --- a real model, opt-in ------------------------------------------------------------------------------

REAL_LLM_BASE = os.environ.get("CSGCLAW_IT_RUNTIME_LLM_BASE_URL", "")


@pytest.fixture
def real_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTeam]:
    """runserver whose default model is the real provider of `CSGCLAW_IT_RUNTIME_LLM_*`."""
    home = tmp_path_factory.mktemp("real-llm-home")
    team = start_team(
        home,
        None,
        isolation="auto",
        provider_base_url=REAL_LLM_BASE,
        provider_api_key=os.environ.get("CSGCLAW_IT_RUNTIME_LLM_API_KEY", "local"),
        model=os.environ.get("CSGCLAW_IT_RUNTIME_LLM_MODEL", "Qwen/Qwen3-0.6B-GGUF"),
    )
    try:
        yield team
    finally:
        team.stop()
        print(team.describe())


@pytest.mark.skipif(
    not REAL_LLM_BASE, reason="set CSGCLAW_IT_RUNTIME_LLM_BASE_URL to run against a real model"
)
@pytest.mark.timeout(300)
def test_a_real_model_makes_the_manager_answer(real_team):
    real_team.wait_running(MANAGER_ID, timeout=60)
    room = real_team.direct_room(MANAGER_ID)
    greeting = real_team.say(room, "Reply with the single word pong.")

    def answered() -> list[dict]:
        return [
            message
            for message in real_team.messages_from(room, MANAGER_ID)
            if message["created_at"] > greeting["created_at"]
        ]

    answer = real_team.wait_for(answered, "the manager's answer from the real model", timeout=120)[0]
    assert answer["content"].strip()
    assert not answer["content"].startswith("Error processing message")


@pytest.mark.skipif(
    not (REAL_LLM_BASE and os.environ.get("CSGCLAW_IT_RUNTIME_TEAM") == "1"),
    reason="set CSGCLAW_IT_RUNTIME_LLM_BASE_URL and CSGCLAW_IT_RUNTIME_TEAM=1 to run the unscripted team",
)
@pytest.mark.timeout(700)
def test_a_real_model_runs_the_team_flow_unscripted(real_team):
    real_team.wait_running(MANAGER_ID, timeout=60)
    room = real_team.direct_room(MANAGER_ID)
    request = real_team.say(room, "Please have a worker write hello.txt in projects/demo, then tell me.")

    def done() -> bool:
        files = [path for path in (real_team.home / "projects").rglob("*") if path.is_file()]
        replies = [
            m for m in real_team.messages_from(room, MANAGER_ID) if m["created_at"] > request["created_at"]
        ]
        return bool(files and replies)

    real_team.wait_for(done, "a file under projects/ and a manager reply", timeout=600)
