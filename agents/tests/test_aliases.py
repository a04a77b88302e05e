"""Agent and bot REST ids may name their agent by alias (participants.md §1.3): `pt-alice`, `agent-alice`,
`alice`, `manager`. An id that names nobody keeps its usual 404, with the id as given."""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentRole, Bot, BotChannel
from agents.selectors import agent_resolve, bot_id_resolve
from agents.tests.conftest import ACCESS_TOKEN
from agents.tests.factories import make_worker
from im.identity import ADMIN_ID, MANAGER_ID
from im.tests.factories import error_text, make_room, post_json

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]

AGENTS = "/api/v1/agents"
BOTS = "/api/v1/bots"
JOIN = "/api/v1/im/agents/join"
ALIASES = ["pt-alice", "agent-alice", "alice", "pt-ALICE", "user-alice", "%20pt-alice%20"]


@pytest.fixture
def alice(client, django_capture_on_commit_callbacks) -> str:
    """Worker `alice` (u-alice) created through the API: its box running, its csgclaw bot bound."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, AGENTS, {"name": "alice"})
    assert response.status_code == 201, response.content
    return "u-alice"


# --- the selector ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agents_own_id_is_one_primary_key_read(django_assert_num_queries):
    make_worker("u-Alice", name="Alice")
    with django_assert_num_queries(1):
        assert agent_resolve("u-Alice").id == "u-Alice"


@pytest.mark.django_db
@pytest.mark.parametrize("path_id", ["admin", "u-admin", "pt-admin", "", "   ", "x" * 129])
def test_the_admin_and_impossible_ids_name_no_agent_without_a_query(django_assert_num_queries, path_id):
    Agent.objects.create(id="admin", name="admin", slug="admin-agent", role=AgentRole.WORKER)
    with django_assert_num_queries(0):
        assert agent_resolve(path_id) is None


@pytest.mark.django_db
def test_the_manager_aliases_name_the_manager_before_an_exact_id():
    Agent.objects.create(id=MANAGER_ID, name="manager", slug="manager", role=AgentRole.MANAGER)
    Agent.objects.create(id="manager", name="other", slug="other", role=AgentRole.WORKER)
    assert [agent_resolve(alias).id for alias in ("manager", "pt-manager", "agent-manager")] == [
        MANAGER_ID
    ] * 3


@pytest.mark.django_db
def test_a_bot_id_that_exists_wins_over_an_alias():
    make_worker("u-bob", name="bob")
    Bot.objects.create(
        channel=BotChannel.CSGCLAW, bot_id="u-bob", name="bob", role="worker", agent_id="u-bob"
    )
    Bot.objects.create(channel=BotChannel.FEISHU, bot_id="bob", name="bob", role="worker", agent_id="u-bob")
    assert [bot_id_resolve(bot_id) for bot_id in ("bob", "pt-bob", "pt-ghost")] == [
        "bob",
        "u-bob",
        "pt-ghost",
    ]


@pytest.mark.django_db
def test_an_alias_of_an_agent_without_a_bot_stays_as_given():
    make_worker("u-bob", name="bob")
    assert bot_id_resolve("pt-bob") == "pt-bob"


# --- agent routes -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("alias", ALIASES)
def test_get_by_alias(client, alice, alias):
    response = client.get(f"{AGENTS}/{alias}")

    assert (response.status_code, response.json()["id"]) == (200, "u-alice")


@pytest.mark.django_db
def test_the_manager_by_its_aliases(client):
    Agent.objects.create(id=MANAGER_ID, name="manager", slug="manager", role=AgentRole.MANAGER)

    ids = [
        client.get(f"{AGENTS}/{alias}").json()["id"] for alias in ("manager", "pt-manager", "agent-manager")
    ]

    assert ids == [MANAGER_ID] * 3


@pytest.mark.django_db
def test_stop_start_and_logs_by_alias(client, alice):
    stopped = client.post(f"{AGENTS}/pt-alice/stop")
    started = client.post(f"{AGENTS}/agent-alice/start")
    logs = client.get(f"{AGENTS}/alice/logs?lines=1")

    assert (stopped.status_code, stopped.json()["id"], stopped.json()["status"]) == (
        200,
        "u-alice",
        "stopped",
    )
    assert (started.status_code, started.json()["id"], started.json()["status"]) == (
        200,
        "u-alice",
        "running",
    )
    assert (logs.status_code, logs["Content-Type"]) == (200, "text/plain; charset=utf-8")


@pytest.mark.django_db
def test_token_rotate_by_alias(client, alice, django_capture_on_commit_callbacks):
    old = Agent.objects.get(pk=alice).api_token
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{AGENTS}/pt-alice/token:rotate", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}
        )

    assert response.status_code == 200, response.content
    assert Agent.objects.get(pk=alice).api_token != old


@pytest.mark.django_db
def test_delete_by_alias(client, alice):
    response = client.delete(f"{AGENTS}/pt-alice")

    assert response.status_code == 204
    assert not Agent.objects.filter(pk=alice).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("delete", ""),
        ("post", "/start"),
        ("post", "/stop"),
        ("get", "/logs"),
        ("post", "/token:rotate"),
    ],
)
@pytest.mark.parametrize("path_id", ["pt-ghost", "admin", "pt-admin"])
def test_an_id_that_names_no_agent_is_404(client, alice, method, suffix, path_id):
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}

    response = getattr(client, method)(f"{AGENTS}/{path_id}{suffix}", headers=headers)

    assert (response.status_code, error_text(response)) == (404, "agent not found")


@pytest.mark.django_db
def test_an_exact_agent_id_wins_over_an_alias(client):
    make_worker("u-x", name="x")
    make_worker("pt-x", name="ptx")

    assert client.get(f"{AGENTS}/pt-x").json()["id"] == "pt-x"
    assert client.get(f"{AGENTS}/x").json()["id"] == "u-x"


# --- join ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_join_by_alias(client, alice):
    make_room(members=[ADMIN_ID], room_id="room-group")

    response = post_json(client, JOIN, {"agent_id": " pt-alice ", "room_id": "room-group"})

    assert (response.status_code, response.json()["agent_id"]) == (200, "u-alice")


@pytest.mark.django_db
def test_join_of_an_id_that_names_no_agent_is_404(client, alice):
    make_room(members=[ADMIN_ID], room_id="room-group")

    response = post_json(client, JOIN, {"agent_id": "pt-ghost", "room_id": "room-group"})

    assert (response.status_code, error_text(response)) == (404, "agent not found")


# --- bot delete ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bot_delete_by_alias(client, alice):
    response = client.delete(f"{BOTS}/pt-alice")

    assert response.status_code == 204
    assert not Bot.objects.filter(bot_id=alice).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("bot_id", ["pt-ghost", "pt-alice"])
def test_bot_delete_of_an_id_that_names_no_bot_keeps_the_id_as_given(client, alice, bot_id):
    client.delete(f"{BOTS}/{alice}")
    make_worker(alice, name="alice")

    response = client.delete(f"{BOTS}/{bot_id}")

    assert (response.status_code, error_text(response)) == (404, f'bot "{bot_id}" not found')
