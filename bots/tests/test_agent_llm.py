"""The agent-scoped LLM proxy over ASGI with a respx-mocked provider (participants.md §5.1–§5.4, §5.7)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async

from agents.models import Agent
from bots.llm.usage import llm_usage_writes_settled
from bots.llm.views import MAX_BODY_BYTES, OVERHEAD_HEADER
from bots.tests.llm_bridge import (
    ANSWER,
    BASE_URL,
    MESSAGES,
    MODEL,
    PROVIDER_KEY,
    SHARED_TOKEN,
    UPSTREAM_URL,
    ProviderStream,
    body_chunk,
    call,
    chat_body,
    delta,
    make_agent,
    open_call,
    provider_toml,
    sent_upstream,
    sse,
    usage_rows,
)
from core.config import clear_config_cache
from core.db.threads import BRIDGE_READ

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]

AGENT_ID = "u-dev"
ALIASES = ["pt-dev", "agent-dev", "u-dev", "dev", "pt-DEV", " pt-dev "]
ACTION_SPELLINGS = {
    "models": ["models", "v1/models"],
    "chat": ["chat/completions", "v1/chat/completions"],
    "responses": ["responses", "v1/responses"],
}


def llm_path(agent_id: str, action: str) -> str:
    return f"/api/v1/agents/{agent_id}/llm/{action}"


@pytest.fixture(autouse=True)
def config(settings, tmp_path) -> Iterator[None]:
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = None
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = None
    settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE = False
    settings.CSGCLAW_CONFIG.write_text(
        f'[server]\naccess_token = "{SHARED_TOKEN}"\n\n[models]\ndefault = "remote.{MODEL}"\n\n'
        + provider_toml("remote", models=[MODEL, "gpt-4o"], reasoning_effort="medium")
    )
    clear_config_cache()
    yield
    clear_config_cache()


@pytest.fixture(autouse=True)
async def settle_usage_writes() -> AsyncIterator[None]:
    yield
    await llm_usage_writes_settled()


@pytest.fixture
def provider() -> Iterator[respx.Route]:
    with respx.mock(assert_all_called=False) as router:
        yield router.post(UPSTREAM_URL)


@pytest.fixture
def dev() -> Agent:
    return make_agent(AGENT_ID)


@pytest.fixture
def manager() -> Agent:
    agent = make_agent("u-manager", model_id="gpt-4o", profile="remote.gpt-4o")
    Agent.objects.filter(pk=agent.pk).update(role="manager")
    return agent


@pytest.fixture
def write_agent_ids() -> Any:
    """`await write_agent_ids((id, role, model_id), …)`: agents whose profiles name those models."""

    @sync_to_async
    def write(*agents: tuple[str, str, str]) -> None:
        for agent_id, role, model_id in agents:
            agent = make_agent(agent_id, model_id=model_id, profile=f"remote.{model_id}")
            Agent.objects.filter(pk=agent.pk).update(role=role)

    return write


# --- routes and check order (§5.1, §5.2) -------------------------------------------------------------


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("action", ACTION_SPELLINGS["models"])
async def test_every_alias_and_spelling_lists_the_resolved_agents_model(dev, alias, action):
    response = await call(llm_path(alias, action), method="GET")

    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "csgclaw"}],
    }
    assert int(response.headers[OVERHEAD_HEADER.lower()]) >= 0


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("action", ACTION_SPELLINGS["chat"])
async def test_every_alias_and_spelling_relays_a_completion_for_the_resolved_agent(
    dev, provider, alias, action
):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    response = await call(llm_path(alias, action), chat_body())

    assert (response.status, json.loads(response.body)) == (200, ANSWER)
    assert sent_upstream(provider)["model"] == MODEL
    [row] = await usage_rows()
    assert (row.agent_id, row.model, row.provider, row.outcome) == (AGENT_ID, MODEL, "remote", "ok")


@pytest.mark.parametrize("alias", ["pt-manager", "manager", "agent-manager", "user-manager", "u-manager"])
async def test_manager_aliases_resolve_the_manager(dev, manager, alias):
    response = await call(llm_path(alias, "models"), method="GET")

    assert json.loads(response.body)["data"][0]["id"] == "gpt-4o"


async def test_an_agent_id_that_is_no_agent_still_resolves_by_the_later_steps(write_agent_ids):
    await write_agent_ids(("u-Alice", "worker", "gpt-4o"), ("u-boss", "manager", MODEL))

    by_case = await call(llm_path("u-alice", "models"), method="GET")
    by_role = await call(llm_path("u-manager", "models"), method="GET")
    admin = await call(llm_path("u-admin", "models"), method="GET")

    assert json.loads(by_case.body)["data"][0]["id"] == "gpt-4o"
    assert json.loads(by_role.body)["data"][0]["id"] == MODEL
    assert (admin.status, admin.text) == (404, 'agent "u-admin" not found\n')


async def test_an_agent_without_a_resolvable_model_is_404_naming_the_agent(dev, settings):
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{SHARED_TOKEN}"\n')
    clear_config_cache()

    responses = [await call(llm_path(alias, "models"), method="GET") for alias in ("u-dev", "pt-dev")]

    for response in responses:
        assert (response.status, response.text) == (
            404,
            'no llm profile could be resolved for agent "u-dev"\n',
        )


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/api/v1/agents/pt-ghost/llm/models", 'agent "pt-ghost" not found'),
        ("/api/v1/agents/ x /llm/v1/models", 'agent "x" not found'),
        # The admin is a participant but no agent.
        ("/api/v1/agents/pt-admin/llm/models", 'agent "pt-admin" not found'),
        ("/api/v1/agents/a\x00b/llm/models", 'agent "a\ufffdb" not found'),
    ],
)
async def test_an_id_naming_no_agent_is_404_with_the_id_as_given(dev, path, text):
    response = await call(path, method="GET")

    assert (response.status, response.text) == (404, text + "\n")
    assert OVERHEAD_HEADER.lower() in response.headers


async def test_an_unknown_agent_is_404_before_the_body_is_decoded(dev, provider):
    response = await call(llm_path("x", "chat/completions"), raw=b"[not json")

    assert (response.status, response.text) == (404, 'agent "x" not found\n')
    assert not provider.called


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/agents//llm/models", "GET"),
        ("/api/v1/agents/ /llm/chat/completions", "POST"),
        ("/api/v1/agents/u-dev/llm", "GET"),
        ("/api/v1/agents/u-dev/llm/", "GET"),
        ("/api/v1/agents/u-dev/llm/models/", "GET"),
        ("/api/v1/agents/u-dev/llm/v2/models", "GET"),
        ("/api/v1/agents/u-dev/llm/v1/v1/models", "GET"),
        ("/api/v1/agents/u-dev/llmx/models", "GET"),
        ("/api/v1/agents/u-dev/llm/completions", "POST"),
        ("/api/v1/agents/u-dev/llm/responses/", "POST"),
        ("/api/v1/agents/u-dev/llm/v2/responses", "POST"),
    ],
)
@pytest.mark.parametrize("token", [SHARED_TOKEN, None])
async def test_bad_paths_are_404_before_auth(dev, path, method, token):
    response = await call(path, method=method, token=token)

    assert (response.status, response.text) == (404, "404 page not found\n")


@pytest.mark.parametrize(
    ("action", "method"),
    [
        ("models", "POST"),
        ("v1/models", "HEAD"),
        ("chat/completions", "GET"),
        ("v1/chat/completions", "PUT"),
        ("responses", "DELETE"),
        ("v1/responses", "PATCH"),
    ],
)
@pytest.mark.parametrize("token", [SHARED_TOKEN, None, "wrong"])
async def test_a_wrong_method_is_405_before_auth(dev, action, method, token):
    response = await call(llm_path("pt-dev", action), method=method, token=token)

    assert (response.status, response.text) == (405, "method not allowed\n")
    assert OVERHEAD_HEADER.lower() in response.headers


@pytest.mark.parametrize(("action", "method"), [("models", "GET"), ("chat/completions", "POST")])
async def test_a_missing_or_wrong_bearer_is_401_before_the_agent_lookup(dev, provider, action, method):
    for alias in ("pt-dev", "pt-ghost"):
        for token in (None, "wrong", SHARED_TOKEN.upper(), SHARED_TOKEN + " "):
            response = await call(llm_path(alias, action), chat_body(), method=method, token=token)

            assert (response.status, response.text) == (401, "unauthorized\n")
    assert not provider.called


async def test_an_agents_own_token_opens_its_routes_under_every_alias(dev, manager, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    own = [await call(llm_path(alias, "models"), method="GET", token=dev.api_token) for alias in ALIASES]
    own_chat = await call(llm_path("pt-dev", "chat/completions"), chat_body(), token=dev.api_token)
    others = await call(llm_path("pt-manager", "models"), method="GET", token=dev.api_token)
    ghost = await call(llm_path("pt-ghost", "models"), method="GET", token=dev.api_token)
    managers_own = await call(llm_path("pt-manager", "models"), method="GET", token=manager.api_token)

    assert [response.status for response in own] == [200] * len(ALIASES)
    assert own_chat.status == 200
    assert (others.status, others.text) == (401, "unauthorized\n")
    assert (ghost.status, ghost.text) == (401, "unauthorized\n")
    assert managers_own.status == 200
    # The box's token never reaches the provider.
    assert provider.calls.last.request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"


async def test_a_get_on_responses_asks_for_a_websocket_after_auth(dev):
    unauthorized = await call(llm_path("pt-dev", "responses"), method="GET", token=None)
    plain = await call(llm_path("pt-dev", "responses"), method="GET")
    v1 = await call(llm_path("pt-ghost", "v1/responses"), method="GET")

    assert (unauthorized.status, unauthorized.text) == (401, "unauthorized\n")
    for response in (plain, v1):
        assert (response.status, response.text) == (400, "responses websocket upgrade is required\n")


async def test_json_errors_when_the_client_asks_for_them(dev):
    headers = {"accept": "application/json"}

    wrong_method = await call(llm_path("pt-dev", "models"), method="POST", headers=headers)
    unknown = await call(llm_path("pt-ghost", "models"), method="GET", headers=headers)

    assert json.loads(wrong_method.body) == {"error": {"status": 405, "message": "method not allowed"}}
    assert json.loads(unknown.body) == {"error": {"status": 404, "message": 'agent "pt-ghost" not found'}}


async def test_resolution_and_model_lookup_are_one_bridge_hop(dev, provider, monkeypatch):
    """The latency budget: one database-thread hop per call with the server token, as on the bot route."""
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    hops: list[str] = []
    real_run = BRIDGE_READ.run

    async def counting_run(function: Any, *args: Any) -> Any:
        hops.append(function.__name__)
        return await real_run(function, *args)

    monkeypatch.setattr(BRIDGE_READ, "run", counting_run)

    response = await call(llm_path("pt-dev", "chat/completions"), chat_body())

    assert response.status == 200
    assert hops == ["agent_llm_target_get"]


# --- chat completions as on the bot route (llm-bridge.md via §5.1) -----------------------------------


async def test_the_request_is_rewritten_for_the_agents_model(dev, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    await call(
        llm_path("pt-dev", "chat/completions"),
        chat_body(model="openai/client-model"),
        headers={"x-secret": "no", "cookie": "a=b"},
    )

    request = provider.calls.last.request
    assert json.loads(request.content) == {
        "model": MODEL,
        "messages": MESSAGES,
        "reasoning_effort": "medium",
    }
    assert request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-secret" not in request.headers
    assert "cookie" not in request.headers
    assert str(request.url) == f"{BASE_URL}/chat/completions"


@pytest.mark.parametrize("status", [429, 500])
async def test_provider_errors_are_relayed(dev, provider, status):
    error = {"error": {"message": "slow down", "type": "rate_limit"}}
    provider.mock(return_value=httpx.Response(status, json=error))

    response = await call(llm_path("agent-dev", "v1/chat/completions"), chat_body())

    assert (response.status, json.loads(response.body)) == (status, error)
    [row] = await usage_rows()
    assert (row.agent_id, row.outcome, row.status_code) == (AGENT_ID, "upstream_error", status)


async def test_a_body_over_ten_mib_is_413_before_the_agent_lookup(dev, provider):
    oversized = b"x" * (MAX_BODY_BYTES + 1)

    known = await call(llm_path("pt-dev", "chat/completions"), raw=oversized)
    unknown = await call(llm_path("pt-ghost", "chat/completions"), raw=oversized)

    for response in (known, unknown):
        assert (response.status, response.text) == (413, "request body too large\n")
    assert not provider.called


async def test_a_body_that_is_not_a_json_object_is_400(dev, provider):
    response = await call(llm_path("pt-dev", "chat/completions"), raw=b"[1, 2]")

    assert response.status == 400
    assert response.text.startswith("decode request: ")
    assert not provider.called


async def test_a_broken_config_is_503_for_an_agents_own_token(dev, settings):
    settings.CSGCLAW_CONFIG.write_text("[models\nbroken")
    clear_config_cache()

    response = await call(llm_path("pt-dev", "models"), method="GET", token=dev.api_token)

    assert response.status == 503
    assert response.text.startswith("models config is unavailable: ")


async def test_a_stream_is_relayed_chunk_by_chunk(dev, provider):
    stream = ProviderStream(sse(delta("a"), delta("b"), "[DONE]"), hold_at=1)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    communicator, start = await open_call(llm_path("pt-dev", "chat/completions"), chat_body(stream=True))
    first, more = await body_chunk(communicator)

    # The first chunk reached the client while the provider still held the rest.
    assert (first, more) == (sse(delta("a"))[0], True)
    assert stream.sent == 1
    stream.release.set()
    rest = []
    while more:
        chunk, more = await body_chunk(communicator)
        rest.append(chunk)
    await communicator.wait(5)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    assert headers["content-type"] == "text/event-stream"
    assert headers["x-accel-buffering"] == "no"
    assert b"".join(rest) == b"".join(sse(delta("b"), "[DONE]"))
    assert sent_upstream(provider)["stream"] is True
    [row] = await usage_rows()
    assert (row.agent_id, row.stream, row.outcome) == (AGENT_ID, True, "ok")
