"""The agent REST routes end to end on the fake sandbox: create, list, get, start, stop, logs, delete and
join (http-api.md §2.4, §5, §6.11), including what a failing or hanging provider does to them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from agents.lifecycle import boxes
from agents.models import Agent, AgentRole, AgentStatus, Bot, BotChannel
from agents.records import manager_ensure
from agents.tests.factories import reload
from im import events
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Event, Message, Room
from im.selectors import direct_room_between
from im.serializers import format_time
from im.tests.factories import (
    error_text,
    event_mark,
    event_types_after,
    events_after,
    make_room,
    make_user,
    post_json,
    row_counts,
)

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]

AGENTS = "/api/v1/agents"
JOIN = "/api/v1/im/agents/join"
EVERY_AGENT_KEY = [
    "id",
    "name",
    "description",
    "image",
    "box_id",
    "role",
    "status",
    "status_detail",
    "created_at",
    "profile",
    "provider",
    "model_id",
    "reasoning_effort",
    "runtime",
]


def make_agent(
    agent_id: str = "u-alice", *, name: str = "Alice", status: str = AgentStatus.UNKNOWN, **fields
) -> Agent:
    """An agent row only (no IM user, no box)."""
    return Agent.objects.create(
        id=agent_id, name=name, slug=name.lower(), role=AgentRole.WORKER, status=status, **fields
    )


def agent_json(client, agent_id: str = "u-alice") -> dict:
    response = client.get(f"{AGENTS}/{agent_id}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def alice(client, django_capture_on_commit_callbacks) -> str:
    """Worker `alice` (u-alice) created through the API, its box provisioned and running."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, AGENTS, {"name": "alice", "description": "test lead"})
    assert response.status_code == 201, response.content
    assert reload().status == AgentStatus.RUNNING
    return "u-alice"


# --- wire shape (§2.4) -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_answers_201_with_the_creating_worker_key_by_key(client, agent_config):
    response = post_json(
        client,
        AGENTS,
        {
            "name": " Alice ",
            "id": " u-alice ",
            "description": " test lead ",
            "role": "manager",
            "image": "evil/image",
            "status": "running",
            "created_at": "2001-01-01T00:00:00Z",
            "model_id": "other",
        },
    )

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert list(data) == [
        "id",
        "name",
        "description",
        "image",
        "role",
        "status",
        "created_at",
        "profile",
        "provider",
        "model_id",
        "reasoning_effort",
    ]
    assert data == {
        "id": "u-alice",
        "name": "Alice",
        "description": "test lead",
        "image": agent_config.bootstrap.manager_image,
        "role": "worker",
        "status": "creating",
        "created_at": format_time(reload().created_at),
        "profile": "remote.gpt-5.4",
        "provider": "llm-api",
        "model_id": "gpt-5.4",
        "reasoning_effort": "high",
    }


@pytest.mark.django_db
def test_every_optional_key_appears_in_its_place_when_set(client):
    make_agent(
        description="reviews code",
        image="registry.test/picoclaw:1",
        box_id="box-7",
        status=AgentStatus.FAILED,
        status_detail="create worker box: boom",
        profile="remote.gpt-5.4",
        provider="llm-api",
        model_id="gpt-5.4",
        reasoning_effort="low",
        runtime="builtin",
        created_at=datetime(2026, 4, 24, 10, 5, 0, 123400, tzinfo=UTC),
    )

    data = agent_json(client)

    assert list(data) == EVERY_AGENT_KEY
    assert data["created_at"] == "2026-04-24T10:05:00.1234Z"
    assert data["status_detail"] == "create worker box: boom"


@pytest.mark.django_db
def test_empty_optional_keys_are_omitted(client):
    make_agent(status=AgentStatus.FAILED, created_at=datetime(2026, 4, 24, 10, 0, tzinfo=UTC))

    assert agent_json(client) == {
        "id": "u-alice",
        "name": "Alice",
        "role": "worker",
        "status": "failed",
        "created_at": "2026-04-24T10:00:00Z",
    }


@pytest.mark.django_db
def test_the_api_token_never_leaves_the_server(client, alice):
    token = reload().api_token
    answers = [
        client.get(AGENTS),
        client.get(f"{AGENTS}/u-alice"),
        client.post(f"{AGENTS}/u-alice/stop"),
        client.post(f"{AGENTS}/u-alice/start"),
        client.get(f"{AGENTS}/u-alice/logs"),
    ]

    for response in answers:
        assert response.status_code == 200
        assert token not in response.content.decode()
        assert b"api_token" not in response.content
    for event in Event.objects.all():
        assert token not in str(event.payload)


# --- create (§5.2) -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "decode request: EOF"),
        ("[]", "decode request: body must be a JSON object"),
        ({"name": 5}, 'decode request: field "name" must be a string'),
        ({"name": "Zed", "profile": ["x"]}, 'decode request: field "profile" must be a string'),
        ({}, "name is required"),
        ({"name": None}, "name is required"),
        ({"name": "Manager"}, 'name "Manager" is reserved'),
        ({"name": "Zed", "id": "u/zed"}, 'agent id "u/zed" is invalid'),
        ({"name": " bad name "}, 'invalid agent name "bad name"'),
        ({"name": "ops/dev"}, 'invalid agent name "ops/dev"'),
        ({"name": "admin"}, 'agent id "u-admin" already exists'),
        ({"name": "Zed", "profile": "nope"}, 'models provider "nope" was not found'),
        ({"name": "a", "runtime": 5}, 'decode request: field "runtime" must be a string'),
        ({"name": "a", "runtime": "x"}, 'runtime must be one of "picoclaw" or "builtin"'),
        ({"name": "a", "runtime": "auto"}, 'runtime must be one of "picoclaw" or "builtin"'),
        # The runtime is checked after the profile (check 8).
        ({"name": "Zed", "profile": "nope", "runtime": "x"}, 'models provider "nope" was not found'),
    ],
)
def test_create_rejections_are_plain_text_400s_that_write_nothing(client, body, message):
    before = {**row_counts(), "Bot": Bot.objects.count()}

    response = post_json(client, AGENTS, body)

    assert response.status_code == 400
    assert error_text(response) == message
    assert {**row_counts(), "Bot": Bot.objects.count()} == before


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "stored"), [(" BuiltIn ", "builtin"), ("picoclaw", "picoclaw"), ("  ", "")])
def test_create_takes_a_runtime_trimmed_and_lower_cased(
    client, fake_boxes, django_capture_on_commit_callbacks, raw, stored
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, AGENTS, {"name": "alice", "runtime": raw})

    assert response.status_code == 201, response.content
    assert response.json().get("runtime") == (stored or None)
    assert list(response.json())[-1] == ("runtime" if stored else "reasoning_effort")
    assert reload().runtime == stored
    created = [event.payload["agent"] for event in Event.objects.filter(type=events.AGENT_UPDATED)]
    assert created and all(payload.get("runtime") == (stored or None) for payload in created)
    labels = fake_boxes.record("alice")["spec"]["labels"]
    expected = {"csgclaw.agent_id": "u-alice", **({"csgclaw.runtime": stored} if stored else {})}
    assert labels == expected


@pytest.mark.django_db
def test_create_refuses_a_body_over_one_mib(client):
    response = post_json(client, AGENTS, {"name": "Zed", "description": "d" * (1024 * 1024)})

    assert (response.status_code, error_text(response)) == (413, "request body too large")
    assert not Agent.objects.exists()


@pytest.mark.django_db
def test_create_names_a_taken_handle(client):
    make_user("u-robert", name="robert", handle="bob")

    response = post_json(client, AGENTS, {"name": "bob"})

    assert (response.status_code, error_text(response)) == (400, 'handle "bob" already exists')


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", AGENTS),
        ("delete", AGENTS),
        ("head", AGENTS),
        ("options", AGENTS),
        ("post", f"{AGENTS}/u-alice"),
        ("get", f"{AGENTS}/u-alice/start"),
        ("get", f"{AGENTS}/u-alice/stop"),
        ("post", f"{AGENTS}/u-alice/logs"),
        ("get", JOIN),
    ],
)
def test_other_methods_are_405(client, method, path):
    make_agent()

    response = getattr(client, method)(path)

    assert response.status_code == 405
    if method != "head":
        assert error_text(response) == "method not allowed"


# --- list and get (§5.1, §5.3) ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_is_empty_without_agents(client):
    response = client.get(AGENTS)

    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.django_db
def test_list_orders_by_creation_time_then_id(client):
    early = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
    late = datetime(2026, 4, 24, 10, 0, tzinfo=UTC)
    make_agent("u-b", name="B", status=AgentStatus.FAILED, created_at=late)
    make_agent("u-a", name="A", status=AgentStatus.FAILED, created_at=late)
    make_agent("u-c", name="C", status=AgentStatus.FAILED, created_at=early)

    assert [agent["id"] for agent in client.get(AGENTS).json()] == ["u-c", "u-a", "u-b"]


@pytest.mark.django_db
def test_list_and_get_show_a_box_removed_behind_our_back_as_unknown_and_write_nothing(
    client, alice, fake_boxes, held_writes
):
    fake_boxes.remove_behind_our_back("alice")
    mark = event_mark()

    [listed] = client.get(AGENTS).json()
    fetched = agent_json(client)

    assert (listed["status"], listed["status_detail"]) == ("unknown", 'agent box "alice" not found')
    assert fetched["status"] == "unknown"
    assert (reload().status, events_after(mark)) == (AgentStatus.RUNNING, [])
    # The observation reaches clients all the same, recorded in the background.
    held_writes.run()
    [updated] = events_after(mark)
    assert updated.type == events.AGENT_UPDATED
    assert updated.payload["agent"]["status"] == "unknown"
    assert reload().status == AgentStatus.UNKNOWN


@pytest.mark.django_db
def test_list_refresh_is_cached_for_the_status_ttl(client, alice, fake_boxes, settings):
    settings.CSGCLAW_AGENT_STATUS_TTL = 60
    assert client.get(AGENTS).json()[0]["status"] == "running"
    fake_boxes.stop_behind_our_back("alice")

    cached = client.get(AGENTS).json()[0]["status"]
    settings.CSGCLAW_AGENT_STATUS_TTL = 0
    fresh = client.get(AGENTS).json()[0]["status"]

    assert (cached, fresh) == ("running", "stopped")


@pytest.mark.django_db
def test_get_answers_404_for_an_unknown_agent_and_trims_the_path_id(client):
    make_agent(status=AgentStatus.FAILED)

    missing = client.get(f"{AGENTS}/u-nobody")

    assert (missing.status_code, error_text(missing)) == (404, "agent not found")
    assert client.get(f"{AGENTS}/%20u-alice%20").json()["id"] == "u-alice"
    assert client.get(f"{AGENTS}/{'x' * 129}").status_code == 404


# --- start and stop (§5.5) ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stop_then_start_a_box(client, alice):
    mark = event_mark()

    stopped = client.post(f"{AGENTS}/u-alice/stop")
    started = client.post(f"{AGENTS}/u-alice/start", data="ignored body", content_type="text/plain")

    assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped")
    assert (started.status_code, started.json()["status"]) == (200, "running")
    assert [event.payload["agent"]["status"] for event in events_after(mark)] == ["stopped", "running"]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["start", "stop"])
def test_start_and_stop_refuse_an_agent_being_created(client, action):
    make_agent(status=AgentStatus.CREATING)

    response = client.post(f"{AGENTS}/u-alice/{action}")

    assert (response.status_code, error_text(response)) == (409, 'agent "u-alice" is being created')


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["start", "stop"])
def test_start_and_stop_of_an_unknown_agent_are_404(client, action):
    response = client.post(f"{AGENTS}/u-nobody/{action}")

    assert (response.status_code, error_text(response)) == (404, "agent not found")


@pytest.mark.django_db
def test_stop_without_a_box_is_409(client):
    make_agent()

    response = client.post(f"{AGENTS}/u-alice/stop")

    assert (response.status_code, error_text(response)) == (409, 'agent box "alice" not found')


@pytest.mark.django_db(transaction=True)
def test_start_without_a_box_answers_202_creating_and_provisions(client, fake_boxes):
    make_agent(status=AgentStatus.FAILED, status_detail="create worker box: fake sandbox: create failed")
    mark = event_mark()

    response = client.post(f"{AGENTS}/u-alice/start")

    assert response.status_code == 202
    assert response.json()["status"] == "creating"
    assert "status_detail" not in response.json()
    assert [event.payload["agent"]["status"] for event in events_after(mark)] == ["creating", "running"]
    assert (reload().status, reload().box_id) == ("running", "fake-alice")


@pytest.mark.django_db
def test_start_failure_is_502_and_marks_the_agent_failed(client, alice, fail_sandbox):
    client.post(f"{AGENTS}/u-alice/stop")
    fail_sandbox("start")

    response = client.post(f"{AGENTS}/u-alice/start")

    assert (response.status_code, error_text(response)) == (502, "start agent: fake sandbox: start failed")
    assert (reload().status, reload().status_detail) == ("failed", "start agent: fake sandbox: start failed")


@pytest.mark.django_db
def test_stop_failure_is_502_and_makes_the_status_unknown(client, alice, fail_sandbox):
    fail_sandbox("stop")
    mark = event_mark()

    response = client.post(f"{AGENTS}/u-alice/stop")

    assert (response.status_code, error_text(response)) == (502, "stop agent: fake sandbox: stop failed")
    assert (reload().status, reload().status_detail) == ("unknown", "stop agent: fake sandbox: stop failed")
    assert event_types_after(mark) == [events.AGENT_UPDATED]


# --- logs (§5.6) --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logs_answer_the_last_lines_as_plain_text(client, alice, fake_boxes):
    log = fake_boxes.runtime_home("alice") / "fake-gateway.log"
    with log.open("a") as file:
        file.writelines(f"gateway line {n}\n" for n in range(1, 31))

    two = client.get(f"{AGENTS}/u-alice/logs?lines=2")
    default = client.get(f"{AGENTS}/u-alice/logs")
    blank = client.get(f"{AGENTS}/u-alice/logs?lines=%20&follow=true")

    assert two.status_code == 200
    assert two["Content-Type"] == "text/plain; charset=utf-8"
    assert two.content.decode() == "gateway line 29\ngateway line 30\n"
    # Each tail is logged by the fake after it answered, so later answers end with earlier tails.
    assert default.content.decode().splitlines() == [f"gateway line {n}" for n in range(12, 31)] + [
        "fake box alice exec"
    ]
    assert len(blank.content.decode().splitlines()) == 20


@pytest.mark.django_db
@pytest.mark.parametrize("lines", ["0", "5001", "abc", "-1", "１", "2.0"])
def test_logs_reject_a_bad_line_count_before_looking_up_the_agent(client, lines):
    make_agent()
    for agent_id in ("u-alice", "u-nobody"):
        response = client.get(f"{AGENTS}/{agent_id}/logs", {"lines": lines})

        assert response.status_code == 400
        assert error_text(response) == "lines must be an integer between 1 and 5000"


@pytest.mark.django_db
def test_logs_of_an_unknown_agent_or_a_missing_box_are_404(client):
    make_agent()

    unknown = client.get(f"{AGENTS}/u-nobody/logs")
    no_box = client.get(f"{AGENTS}/u-alice/logs")

    assert (unknown.status_code, error_text(unknown)) == (404, "agent not found")
    assert (no_box.status_code, error_text(no_box)) == (404, 'agent box "alice" not found')


@pytest.mark.django_db
def test_logs_provider_failure_is_502(client, alice, fail_sandbox):
    fail_sandbox("exec")

    response = client.get(f"{AGENTS}/u-alice/logs")

    assert (response.status_code, error_text(response)) == (502, "read agent logs: fake sandbox: exec failed")


# --- delete (§5.4) ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_removes_box_directory_bindings_and_row_but_keeps_the_im_side(client, alice, csgclaw_home):
    Bot.objects.create(
        channel=BotChannel.FEISHU, bot_id="u-alice", name="alice", role="worker", agent_id="u-alice"
    )
    (csgclaw_home / "projects" / "plan.md").write_text("shared")
    last_state = agent_json(client)
    messages = Message.objects.filter(room=direct_room_between(ADMIN_ID, "u-alice")).count()
    mark = event_mark()

    response = client.delete(f"{AGENTS}/u-alice")

    assert (response.status_code, response.content) == (204, b"")
    assert not Agent.objects.filter(pk="u-alice").exists()
    assert not Bot.objects.filter(agent_id="u-alice").exists()
    assert not (csgclaw_home / "agents" / "alice").exists()
    assert (csgclaw_home / "projects" / "plan.md").read_text() == "shared"
    [deleted] = events_after(mark)
    assert deleted.type == events.AGENT_UPDATED
    assert deleted.payload["agent"] == {**last_state, "status": "deleted"}
    assert ChatUser.objects.filter(pk="u-alice").exists()
    assert Message.objects.filter(room=direct_room_between(ADMIN_ID, "u-alice")).count() == messages
    assert client.get(f"{AGENTS}/u-alice").status_code == 404


@pytest.mark.django_db
def test_delete_of_the_manager_is_409(client, agent_config):
    manager_ensure(config=agent_config)

    response = client.delete(f"{AGENTS}/{MANAGER_ID}")

    assert (response.status_code, error_text(response)) == (409, 'agent "u-manager" is reserved')
    assert Agent.objects.filter(pk=MANAGER_ID).exists()


@pytest.mark.django_db
def test_delete_of_an_unknown_agent_is_404_before_any_provider_call(client, fail_sandbox):
    fail_sandbox("open", "remove")

    response = client.delete(f"{AGENTS}/u-nobody")

    assert (response.status_code, error_text(response)) == (404, "agent not found")


@pytest.mark.django_db
def test_delete_provider_failure_is_502_and_keeps_the_agent(client, alice, fail_sandbox, csgclaw_home):
    fail_sandbox("remove")

    response = client.delete(f"{AGENTS}/u-alice")

    assert (response.status_code, error_text(response)) == (
        502,
        "remove agent box: fake sandbox: remove failed",
    )
    assert Agent.objects.filter(pk="u-alice").exists()
    assert Bot.objects.filter(agent_id="u-alice").exists()
    assert (csgclaw_home / "agents" / "alice").is_dir()


@pytest.mark.django_db
def test_delete_reports_an_agent_directory_that_cannot_be_removed(client, alice, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(boxes.shutil, "rmtree", refuse)

    response = client.delete(f"{AGENTS}/u-alice")

    assert (response.status_code, error_text(response)) == (
        502,
        "remove agent home: [Errno 13] Permission denied",
    )
    assert Agent.objects.filter(pk="u-alice").exists()


@pytest.mark.django_db
def test_delete_of_an_agent_that_never_had_a_box(client):
    make_agent(status=AgentStatus.FAILED)

    assert client.delete(f"{AGENTS}/u-alice").status_code == 204


# --- status in the background: success, failure, hang -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_created_worker_becomes_running(client):
    created = post_json(client, AGENTS, {"name": "alice"})

    assert created.json()["status"] == "creating"
    listed = agent_json(client)
    assert (listed["status"], listed["box_id"]) == ("running", "fake-alice")
    assert "status_detail" not in listed


@pytest.mark.django_db(transaction=True)
def test_failed_provisioning_shows_failed_until_a_later_start_succeeds(client, fail_sandbox, monkeypatch):
    fail_sandbox("create")

    created = post_json(client, AGENTS, {"name": "alice"})
    failed = agent_json(client)
    still_failed = agent_json(client)
    monkeypatch.delenv("CSGCLAW_FAKE_SANDBOX_FAIL")
    restarted = client.post(f"{AGENTS}/u-alice/start")

    assert (created.status_code, created.json()["status"]) == (201, "creating")
    assert (failed["status"], failed["status_detail"]) == (
        "failed",
        "create worker box: fake sandbox: create failed",
    )
    assert still_failed == failed
    assert (restarted.status_code, restarted.json()["status"]) == (202, "creating")
    assert agent_json(client)["status"] == "running"


@pytest.mark.django_db(transaction=True)
def test_a_hanging_provider_never_holds_up_the_api(client, settings, monkeypatch, until):
    settings.CSGCLAW_SANDBOX_INLINE = False
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "2")
    started = time.monotonic()

    created = post_json(client, AGENTS, {"name": "alice"})
    during = agent_json(client)
    start_meanwhile = client.post(f"{AGENTS}/u-alice/start")
    rooms = client.get("/api/v1/rooms")
    answered_within = time.monotonic() - started

    assert (created.status_code, created.json()["status"]) == (201, "creating")
    assert during["status"] == "creating"
    assert (start_meanwhile.status_code, error_text(start_meanwhile)) == (
        409,
        'agent "u-alice" is being created',
    )
    assert rooms.status_code == 200
    # Had any of these waited for the box, they would have taken the whole delay.
    assert answered_within < 1.5
    assert until(lambda: agent_json(client)["status"] == "running", timeout=10)


# --- join an agent to a room (§6.11) ------------------------------------------------------------------------


@pytest.fixture
def group_room() -> Room:
    return make_room(members=[ADMIN_ID], title="project", room_id="room-group")


@pytest.mark.django_db
@pytest.mark.usefixtures("group_room")
def test_join_adds_the_agent_and_announces_it(client):
    make_agent()
    mark = event_mark()

    response = post_json(client, JOIN, {"agent_id": " u-alice ", "room_id": " room-group "})

    assert response.status_code == 200
    assert list(response.json().items()) == [
        ("message", "agent joined successfully"),
        ("room_id", "room-group"),
        ("agent_id", "u-alice"),
    ]
    assert event_types_after(mark) == [events.USER_CREATED, events.ROOM_CREATED, events.ROOM_MEMBERS_ADDED]
    added = Room.objects.get(pk="room-group").messages.order_by("seq").last()
    assert (added.content, added.mentions) == ("admin invited alice to join the room", ["u-alice"])


@pytest.mark.django_db
@pytest.mark.usefixtures("group_room")
def test_join_ensures_the_identity_even_when_the_join_is_refused(client):
    make_agent()

    response = post_json(client, JOIN, {"agent_id": "u-alice", "room_id": "  "})

    assert (response.status_code, error_text(response)) == (400, "room_id is required")
    assert ChatUser.objects.filter(pk="u-alice").exists()
    assert direct_room_between(ADMIN_ID, "u-alice") is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("group_room")
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"room_id": "room-group"}, 404, "agent not found"),
        ({"agent_id": "", "room_id": "room-group"}, 404, "agent not found"),
        ({"agent_id": "u-nobody", "room_id": "room-group"}, 404, "agent not found"),
        ({"agent_id": "u-alice", "room_id": "room-nope"}, 400, "room not found"),
        ({"agent_id": "u-alice", "room_id": "room-group", "inviter_id": "u-ghost"}, 400, "inviter not found"),
        (
            {"agent_id": "u-alice", "room_id": "room-group", "inviter_id": "u-carol"},
            400,
            "inviter is not a room member",
        ),
        ({"agent_id": "u-alice", "room_id": "room-direct"}, 400, "cannot add members to direct room"),
    ],
)
def test_join_rejections(client, body, status, message):
    make_agent()
    make_user("u-carol", name="carol")
    make_room(members=[ADMIN_ID, "u-carol"], is_direct=True, room_id="room-direct")

    response = post_json(client, JOIN, body)

    assert (response.status_code, error_text(response)) == (status, message)


@pytest.mark.django_db
@pytest.mark.usefixtures("group_room")
def test_join_twice_has_no_new_users_to_invite(client):
    make_agent()
    post_json(client, JOIN, {"agent_id": "u-alice", "room_id": "room-group"})

    response = post_json(client, JOIN, {"agent_id": "u-alice", "room_id": "room-group"})

    assert (response.status_code, error_text(response)) == (400, "no new users to invite")


@pytest.mark.django_db
@pytest.mark.usefixtures("group_room")
def test_join_reports_an_identity_that_cannot_be_ensured_as_502(client):
    make_agent()
    make_user("u-robert", name="robert", handle="alice")

    response = post_json(client, JOIN, {"agent_id": "u-alice", "room_id": "room-group"})

    assert (response.status_code, error_text(response)) == (
        502,
        'ensure agent im user: handle "alice" already exists',
    )


# --- admin (§10.2) ------------------------------------------------------------------------------------------

ADMIN_AGENTS = "/admin/agents/agent/"


def admin_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
def test_admin_lists_filters_and_searches_agents(admin_client):
    make_agent(status=AgentStatus.FAILED, status_detail="create worker box: boom", box_id="box-1")
    make_agent("u-bob", name="Bob", status=AgentStatus.FAILED)

    listed = admin_client.get(ADMIN_AGENTS, {"status__exact": "failed", "role__exact": "worker"})
    searched = admin_client.get(ADMIN_AGENTS, {"q": "alice"})

    assert listed.status_code == 200
    assert {agent.id for agent in listed.context["cl"].result_list} == {"u-alice", "u-bob"}
    assert [agent.id for agent in searched.context["cl"].result_list] == ["u-alice"]
    assert b"create worker box: boom" in listed.content


@pytest.mark.django_db
def test_admin_shows_the_api_token_read_only(admin_client):
    agent = make_agent()

    page = admin_client.get(f"{ADMIN_AGENTS}u-alice/change/")

    assert page.status_code == 200
    assert agent.api_token in page.content.decode()
    assert 'name="api_token"' not in page.content.decode()


@pytest.mark.django_db
def test_admin_edits_the_runtime(admin_client):
    make_agent(created_at=datetime(2026, 4, 24, 10, 0, tzinfo=UTC))
    page = admin_client.get(f"{ADMIN_AGENTS}u-alice/change/")
    assert 'name="runtime"' in page.content.decode()

    response = admin_client.post(
        f"{ADMIN_AGENTS}u-alice/change/",
        {
            "id": "u-alice",
            "name": "Alice",
            "role": "worker",
            "status": "unknown",
            "runtime": "builtin",
            "created_at_0": "2026-04-24",
            "created_at_1": "10:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()
    assert reload().runtime == "builtin"
    assert agent_json(admin_client)["runtime"] == "builtin"


@pytest.mark.django_db
def test_admin_stop_and_start_actions_go_through_the_box_lifecycle(admin_client, alice):
    stopped = admin_client.post(
        ADMIN_AGENTS, {"action": "stop_agents", "_selected_action": ["u-alice"]}, follow=True
    )
    after_stop = reload().status
    started = admin_client.post(
        ADMIN_AGENTS, {"action": "start_agents", "_selected_action": ["u-alice"]}, follow=True
    )

    assert (after_stop, reload().status) == ("stopped", "running")
    assert admin_messages(stopped) == ["u-alice: status stopped"]
    assert admin_messages(started) == ["u-alice: status running"]


@pytest.mark.django_db
def test_admin_actions_report_each_agent_error(admin_client, alice, fail_sandbox):
    make_agent("u-new", name="New", status=AgentStatus.CREATING)
    make_agent("u-bare", name="Bare", status=AgentStatus.FAILED)
    fail_sandbox("stop")

    response = admin_client.post(
        ADMIN_AGENTS,
        {"action": "stop_agents", "_selected_action": ["u-alice", "u-bare", "u-new"]},
        follow=True,
    )

    assert sorted(admin_messages(response)) == [
        "u-alice: stop agent: fake sandbox: stop failed",
        'u-bare: agent box "bare" not found',
        'u-new: agent "u-new" is being created',
    ]


@pytest.mark.django_db
def test_admin_start_action_queues_provisioning_without_a_box(admin_client):
    make_agent(status=AgentStatus.FAILED)

    response = admin_client.post(
        ADMIN_AGENTS, {"action": "start_agents", "_selected_action": ["u-alice"]}, follow=True
    )

    assert admin_messages(response) == ["u-alice: box provisioning queued"]


@pytest.mark.django_db
def test_admin_lists_filters_and_searches_bots(admin_client):
    Bot.objects.create(
        channel=BotChannel.CSGCLAW, bot_id="u-alice", name="alice", role="worker", agent_id="u-alice"
    )
    Bot.objects.create(channel=BotChannel.FEISHU, bot_id="u-dev", name="dev", role="worker", agent_id="u-dev")

    listed = admin_client.get("/admin/agents/bot/", {"channel__exact": "feishu"})
    searched = admin_client.get("/admin/agents/bot/", {"q": "alice"})

    assert listed.status_code == 200
    assert [bot.bot_id for bot in listed.context["cl"].result_list] == ["u-dev"]
    assert [bot.bot_id for bot in searched.context["cl"].result_list] == ["u-alice"]
