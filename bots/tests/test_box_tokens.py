"""Box tokens (security.md S1.2, S2.1, S2.2) on every kind of bearer route, through ASGI.

The placeholder `your_access_token` opens no route, whatever config.toml says; a worker box holds its own
token, which opens its own bot, participant and LLM routes and none of the manager's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from agents import credentials
from agents import records as agent_records
from agents import services as agent_services
from agents.models import Agent
from core.config import clear_config_cache, get_config
from sandbox import boxspec
from sandbox.providers.fake import STATE_FILE_NAME

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

SERVER_TOKEN = "box-tokens-server-token"
PLACEHOLDER = "your_access_token"
CONFIG = """
[server]
access_token = "{token}"
advertise_base_url = "http://box-host.test:18080"

[models]
default = "remote.gpt-5.4"

[models.providers.remote]
base_url = "https://llm.example.test/v1"
api_key = "sk-test"
models = ["gpt-5.4"]
"""


@dataclass(frozen=True)
class Route:
    method: str
    template: str

    def path(self, agent_id: str) -> str:
        return self.template.format(id=agent_id, participant=f"pt-{agent_id.removeprefix('u-')}")

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


# One of each kind: bot stream, send and LLM; the Feishu relay; participant stream and send; the
# agent-scoped LLM proxy.
AGENT_ROUTES = [
    Route("GET", "/api/bots/{id}/events"),
    Route("POST", "/api/bots/{id}/messages/send"),
    Route("GET", "/api/bots/{id}/llm/models"),
    Route("POST", "/api/bots/{id}/llm/v1/chat/completions"),
    Route("GET", "/api/v1/channels/feishu/bots/{id}/events"),
    Route("GET", "/api/v1/channels/csgclaw/participants/{participant}/events"),
    Route("POST", "/api/v1/channels/csgclaw/participants/{participant}/messages"),
    Route("GET", "/api/v1/channels/feishu/participants/{participant}/events"),
    Route("GET", "/api/v1/agents/{id}/llm/models"),
    Route("POST", "/api/v1/agents/{id}/llm/chat/completions"),
    Route("POST", "/api/v1/agents/{id}/llm/v1/chat/completions"),
]
ALL_ROUTES = [*AGENT_ROUTES, Route("POST", "/api/v1/agents/{id}/token:rotate")]


@pytest.fixture
def write_config(settings, tmp_path):
    def write(token: str) -> None:
        settings.CSGCLAW_CONFIG.write_text(CONFIG.format(token=token))
        clear_config_cache()

    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    credentials.forget_agent_tokens()
    write(SERVER_TOKEN)
    yield write
    credentials.forget_agent_tokens()
    clear_config_cache()


@pytest.fixture
async def team(write_config) -> dict[str, str]:
    """The manager and worker `alice`, made as the server makes them; alice's box env as her token."""

    def create() -> dict[str, str]:
        config = get_config()
        manager = agent_records.manager_ensure(config=config)
        alice = agent_services.agent_create(config=config, name="alice")
        return {"manager": manager.api_token, "alice": box_token(alice)}

    return await sync_to_async(create)()


def box_token(agent: Agent) -> str:
    """The token in the environment the (fake) provider created the agent's box with."""
    home = boxspec.runtime_home(settings.CSGCLAW_HOME, agent.slug, "boxlite")
    env = json.loads((home / STATE_FILE_NAME).read_text())["spec"]["env"]
    assert env["CSGCLAW_ACCESS_TOKEN"] == env["PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN"]
    assert env["OPENAI_API_KEY"] == env["CSGCLAW_LLM_API_KEY"] == env["CSGCLAW_ACCESS_TOKEN"]
    return env["CSGCLAW_ACCESS_TOKEN"]


async def call(asgi_stream, route: Route, agent_id: str, token: str | None):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await asgi_stream(route.path(agent_id), method=route.method, headers=headers)


async def assert_refused(stream) -> None:
    assert stream.status == 401
    assert await stream.chunk() == b"unauthorized\n"


@pytest.mark.parametrize("configured", [PLACEHOLDER, SERVER_TOKEN])
@pytest.mark.parametrize("route", ALL_ROUTES, ids=str)
async def test_the_placeholder_opens_no_route(asgi_stream, team, write_config, route, configured):
    write_config(configured)

    for agent_id in ("u-alice", "u-manager"):
        await assert_refused(await call(asgi_stream, route, agent_id, PLACEHOLDER))


async def test_a_worker_box_holds_its_own_token_never_the_servers(team):
    alice = await sync_to_async(Agent.objects.get)(pk="u-alice")

    assert team["alice"] == alice.api_token
    assert team["alice"] != SERVER_TOKEN


@pytest.mark.parametrize("route", AGENT_ROUTES, ids=str)
async def test_a_worker_token_opens_its_own_routes(asgi_stream, team, route):
    stream = await call(asgi_stream, route, "u-alice", team["alice"])

    # The route's own answer past auth: a stream, or 400 for the empty body / the unconfigured Feishu app.
    assert stream.status in (200, 400), await stream.chunk()


@pytest.mark.parametrize("route", ALL_ROUTES, ids=str)
async def test_a_worker_token_opens_none_of_the_managers_routes(asgi_stream, team, route):
    await assert_refused(await call(asgi_stream, route, "u-manager", team["alice"]))


@pytest.mark.parametrize("route", AGENT_ROUTES, ids=str)
async def test_the_server_token_still_opens_every_agents_routes(asgi_stream, team, route):
    for agent_id in ("u-alice", "u-manager"):
        stream = await call(asgi_stream, route, agent_id, SERVER_TOKEN)
        assert stream.status in (200, 400), await stream.chunk()


async def test_the_worker_token_is_an_agent_credential_for_the_remote_check(team):
    assert await credentials.acredential_kind(team["alice"]) == "agent"
    assert await credentials.acredential_kind(SERVER_TOKEN) == "server"
    assert await credentials.acredential_kind(PLACEHOLDER) is None
