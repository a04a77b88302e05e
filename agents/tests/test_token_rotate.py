"""POST /api/v1/agents/{id}/token:rotate (security.md S2.3): a new own token, the box recreated with it."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from agents import credentials
from agents.models import Agent, AgentStatus
from agents.tests.conftest import ACCESS_TOKEN
from core.config import clear_config_cache
from core.times import format_time
from im import events
from im.tests.factories import error_text, event_mark, events_after, post_json

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]

AGENTS = "/api/v1/agents"
SERVER = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


def rotate_url(agent_id: str = "u-alice") -> str:
    return f"{AGENTS}/{agent_id}/token:rotate"


def token(agent_id: str = "u-alice") -> str:
    return Agent.objects.get(pk=agent_id).api_token


def box_env(fake_boxes, slug: str = "alice") -> dict[str, str]:
    return fake_boxes.record(slug)["spec"]["env"]


@pytest.fixture
def alice(client, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, AGENTS, {"name": "alice"})
    assert response.status_code == 201, response.content
    return "u-alice"


@pytest.fixture(autouse=True)
def fresh_token_cache():
    credentials.forget_agent_tokens()
    yield
    credentials.forget_agent_tokens()


def rotate(client, django_capture_on_commit_callbacks, agent_id: str = "u-alice", **headers: str):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(rotate_url(agent_id), headers=headers or SERVER)


@pytest.mark.django_db
def test_rotation_issues_a_new_token_and_recreates_the_box_with_it(
    client, alice, fake_boxes, django_capture_on_commit_callbacks
):
    old = token()
    assert box_env(fake_boxes)["CSGCLAW_ACCESS_TOKEN"] == old
    mark = event_mark()
    before = timezone.now()

    response = rotate(client, django_capture_on_commit_callbacks)

    assert response.status_code == 200, response.content
    agent = Agent.objects.get(pk=alice)
    assert list(response.json()) == ["id", "rotated_at"]
    assert response.json()["id"] == "u-alice"
    rotated_at = datetime.fromisoformat(response.json()["rotated_at"])
    assert before <= rotated_at <= agent.updated_at
    assert response.json()["rotated_at"] == format_time(rotated_at)
    assert agent.api_token != old and len(agent.api_token) == 43
    assert agent.status == AgentStatus.RUNNING
    env = box_env(fake_boxes)
    for name in ("CSGCLAW_ACCESS_TOKEN", "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN", "OPENAI_API_KEY"):
        assert env[name] == agent.api_token
    assert fake_boxes.operations("alice")[-3:] == ["remove", "create", "info"]
    emitted = [(event.type, event.payload["agent"]["status"]) for event in events_after(mark)]
    assert emitted == [(events.AGENT_UPDATED, "creating"), (events.AGENT_UPDATED, "running")]
    assert events_after(mark)[0].payload["agent"]["id"] == "u-alice"
    assert "api_token" not in str(events_after(mark)[0].payload)


# Transactional: the bot routes read tokens on their own database threads, which must see the commits.
@pytest.mark.django_db(transaction=True)
def test_the_old_token_stops_at_once_and_the_new_one_works(client, alice, django_capture_on_commit_callbacks):
    old = token()
    models = f"/api/bots/{alice}/llm/models"
    assert client.get(models, headers={"Authorization": f"Bearer {old}"}).status_code == 200
    # Warm the shared credential cache too: S4's check must forget the old token as well.
    assert credentials.credential_kind(old) == "agent"

    assert rotate(client, django_capture_on_commit_callbacks).status_code == 200

    new = token()
    assert client.get(models, headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert credentials.credential_kind(old) is None
    assert client.get(models, headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert credentials.credential_kind(new) == "agent"


@pytest.mark.django_db
def test_the_manager_files_are_rendered_again_with_the_new_token(
    client, csgclaw_home, agent_config, django_capture_on_commit_callbacks
):
    from agents.lifecycle import manager_box_ensure

    manager = manager_box_ensure(config=agent_config)
    picoclaw = csgclaw_home / "agents" / "manager" / ".picoclaw"
    assert manager.api_token in (picoclaw / "config.json").read_text()

    assert rotate(client, django_capture_on_commit_callbacks, manager.id).status_code == 200

    new = token(manager.id)
    rendered = (picoclaw / "config.json").read_text() + (picoclaw / ".security.yml").read_text()
    assert new in rendered and manager.api_token not in rendered


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer your_access_token",
        f"bearer {ACCESS_TOKEN}",
        f"Bearer {ACCESS_TOKEN}x",
        "agent's own",
    ],
)
def test_only_the_server_token_may_rotate(client, alice, authorization):
    old = token()
    if authorization == "own":
        authorization = f"Bearer {old}"
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.post(rotate_url(), headers=headers)

    assert (response.status_code, error_text(response)) == (401, "unauthorized")
    assert token() == old


@pytest.mark.django_db
def test_check_order_path_then_method_then_auth_then_agent(client, alice):
    assert client.post(f"{AGENTS}/%20/token:rotate", headers=SERVER).status_code == 404
    assert client.post(f"{AGENTS}/u-alice/token:rotate/", headers=SERVER).status_code == 404
    assert client.get(rotate_url()).status_code == 405
    assert client.put(rotate_url()).status_code == 405
    assert client.post(rotate_url("u-nobody")).status_code == 401
    response = client.post(rotate_url("u-nobody"), headers=SERVER)
    assert (response.status_code, error_text(response)) == (404, "agent not found")


@pytest.mark.django_db
def test_the_placeholder_cannot_rotate_even_when_it_is_the_configured_token(client, alice, settings):
    settings.CSGCLAW_CONFIG.write_text('[server]\naccess_token = "your_access_token"\n')
    clear_config_cache()

    response = client.post(rotate_url(), headers={"Authorization": "Bearer your_access_token"})

    assert response.status_code == 401


@pytest.mark.django_db
def test_with_no_auth_anyone_may_rotate(client, alice, settings, django_capture_on_commit_callbacks):
    settings.CSGCLAW_CONFIG.write_text("[server]\nno_auth = true\n")
    clear_config_cache()
    old = token()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(rotate_url())

    assert response.status_code == 200
    assert token() != old


@pytest.mark.django_db
def test_an_agent_being_created_is_409(client, alice):
    Agent.objects.filter(pk=alice).update(status=AgentStatus.CREATING)
    old = token()

    response = client.post(rotate_url(), headers=SERVER)

    assert (response.status_code, error_text(response)) == (409, 'agent "u-alice" is being created')
    assert token() == old


@pytest.mark.django_db(transaction=True)
def test_a_box_that_cannot_be_removed_is_502_and_the_old_token_is_dead_anyway(
    client, alice, fail_sandbox, django_capture_on_commit_callbacks
):
    old = token()
    fail_sandbox("remove")

    response = rotate(client, django_capture_on_commit_callbacks)

    assert (response.status_code, error_text(response)) == (
        502,
        "rotate agent token: fake sandbox: remove failed",
    )
    agent = Agent.objects.get(pk=alice)
    assert agent.api_token != old
    assert (agent.status, agent.status_detail) == (
        AgentStatus.FAILED,
        "rotate agent token: fake sandbox: remove failed",
    )
    models = f"/api/bots/{alice}/llm/models"
    assert client.get(models, headers={"Authorization": f"Bearer {old}"}).status_code == 401


@pytest.mark.django_db
def test_an_agent_without_a_box_gets_one_with_the_new_token(
    client, alice, fake_boxes, django_capture_on_commit_callbacks
):
    fake_boxes.remove_behind_our_back("alice")

    assert rotate(client, django_capture_on_commit_callbacks).status_code == 200

    assert box_env(fake_boxes)["CSGCLAW_ACCESS_TOKEN"] == token()
    assert Agent.objects.get(pk=alice).status == AgentStatus.RUNNING


@pytest.mark.django_db
def test_a_deleted_agents_cached_token_is_forgotten(client, alice, django_capture_on_commit_callbacks):
    old = token()
    assert credentials.credential_kind(old) == "agent"

    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"{AGENTS}/{alice}").status_code == 204

    assert credentials.credential_kind(old) is None
