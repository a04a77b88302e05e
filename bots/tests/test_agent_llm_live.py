"""The agent-scoped LLM proxy end to end: the `openai` client at `/api/v1/agents/pt-manager/llm` → Daphne."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from bots.tests.fake_openai import USAGE, FakeOpenAI
from csgclaw_site.testing.live import LiveServer, LiveState

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

ACCESS_TOKEN = "agent-llm-live-shared-token"
MANAGER_TOKEN = "agent-llm-live-manager-token"
PROVIDER_KEY = "sk-agent-llm-live-provider"
MODEL = "fake-model"
STREAM_CHUNKS = 4


def config_toml(provider_base_url: str) -> str:
    return (
        f'[server]\naccess_token = "{ACCESS_TOKEN}"\n\n'
        f'[models]\ndefault = "fake.{MODEL}"\n\n'
        "[models.providers.fake]\n"
        f'base_url = "{provider_base_url}"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["{MODEL}"]\n'
    )


CREATE_MANAGER = (
    "from agents.models import Agent; "
    "Agent.objects.create(id='u-manager', name='manager', slug='manager', role='manager', "
    f"profile='fake.{MODEL}', provider='llm-api', model_id='{MODEL}', api_token='{MANAGER_TOKEN}')"
)


def usage_rows(state: LiveState, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
    """The usage rows once `count` exist (they are written just after each response)."""
    deadline = time.monotonic() + timeout
    while True:
        connection = sqlite3.connect(state.home / "csgclaw.sqlite3")
        connection.row_factory = sqlite3.Row
        try:
            rows = [dict(row) for row in connection.execute("SELECT * FROM bots_llmusage ORDER BY id")]
        finally:
            connection.close()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def manager_client(server: LiveServer) -> openai.OpenAI:
    """The SDK pointed at the manager's agent-scoped LLM routes by its participant id, with its token."""
    return openai.OpenAI(
        base_url=f"{server.base_url}/api/v1/agents/pt-manager/llm",
        api_key=MANAGER_TOKEN,
        max_retries=0,
        timeout=20.0,
        http_client=httpx.Client(trust_env=False),
    )


def test_the_openai_client_talks_to_the_manager_through_its_participant_id(
    live_state_factory: Callable[..., LiveState], daphne_factory: Callable[..., LiveServer]
):
    with FakeOpenAI(models=[MODEL]) as provider:
        state = live_state_factory()
        (state.home / "config.toml").write_text(config_toml(provider.base_url))
        state.manage("shell", "-c", CREATE_MANAGER)
        server = daphne_factory(state=state)
        client = manager_client(server)

        models = client.models.list()
        completion = client.chat.completions.create(
            model="openai/whatever", messages=[{"role": "user", "content": "ping"}]
        )
        provider.stream_chunks = STREAM_CHUNKS
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "count"}], stream=True
            )
        )
        ghost = client.with_options(base_url=f"{server.base_url}/api/v1/agents/pt-ghost/llm")
        with pytest.raises(openai.AuthenticationError):
            ghost.models.list()
        with pytest.raises(openai.NotFoundError) as unknown:
            ghost.with_options(api_key=ACCESS_TOKEN).models.list()

    assert [model.id for model in models.data] == [MODEL]
    assert completion.choices[0].message.content == "pong"
    assert completion.usage.total_tokens == USAGE["total_tokens"]
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == "".join(f"part {number} " for number in range(STREAM_CHUNKS))
    plain, stream = provider.requests
    assert (plain.method, plain.path, stream.path) == ("POST", "/v1/chat/completions", "/v1/chat/completions")
    assert (plain.body["model"], stream.body["model"], stream.body["stream"]) == (MODEL, MODEL, True)
    assert plain.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    # The manager's token opens only the manager's routes; the server token reaches the agent lookup.
    assert unknown.value.body == {"status": 404, "message": 'agent "pt-ghost" not found'}
    rows = usage_rows(state, 2)
    assert [(row["agent_id"], row["stream"], row["outcome"]) for row in rows] == [
        ("u-manager", 0, "ok"),
        ("u-manager", 1, "ok"),
    ]
