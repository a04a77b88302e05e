"""The LLM bridge end to end: the official `openai` client → live Daphne → a fake provider on loopback."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from bots.tests.fake_openai import USAGE, FakeOpenAI
from csgclaw_site.testing.live import SERVER_LOG_TAIL, LiveServer, LiveState, live_env, start_daphne

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

ACCESS_TOKEN = "live-shared-token"
PROVIDER_KEY = "sk-live-provider-key"
MODEL = "fake-model"
AGENT_ID = "u-live"
DOWN_AGENT_ID = "u-down"
ALLOWED_UPSTREAM_HEADERS = {
    "host",
    "content-length",
    "authorization",
    "content-type",
    "accept",
    "accept-encoding",
    "user-agent",
}
# How long after the first streamed chunk the fake provider writes its last one; the client must have
# the first chunk long before that.
CHUNK_INTERVAL = 0.4
STREAM_CHUNKS = 5


@dataclass
class Bridge:
    server: LiveServer
    provider: FakeOpenAI
    # Usage rows up to this id belong to earlier tests (the server is shared by the module).
    seen_usage_id: int = 0

    def client(self, agent_id: str = AGENT_ID, *, token: str = ACCESS_TOKEN) -> openai.OpenAI:
        """The official client as a box would configure it: bridge base URL, server token as API key."""
        return openai.OpenAI(
            base_url=f"{self.server.base_url}/api/bots/{agent_id}/llm",
            api_key=token,
            max_retries=0,
            timeout=20.0,
            http_client=httpx.Client(trust_env=False),
        )

    def usage_rows(self, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
        """This test's usage rows once `count` exist (they are written just after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self._usage_rows_after(self.seen_usage_id)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def start_test(self) -> None:
        self.provider.reset()
        rows = self._usage_rows_after(0)
        self.seen_usage_id = int(rows[-1]["id"]) if rows else 0

    def _usage_rows_after(self, usage_id: int) -> list[dict[str, object]]:
        connection = sqlite3.connect(self.server.home / "csgclaw.sqlite3")
        connection.row_factory = sqlite3.Row
        try:
            query = "SELECT * FROM bots_llmusage WHERE id > ? ORDER BY id"
            return [dict(row) for row in connection.execute(query, (usage_id,))]
        finally:
            connection.close()


def config_toml(provider_base_url: str) -> str:
    return (
        f'[server]\naccess_token = "{ACCESS_TOKEN}"\n\n'
        f'[models]\ndefault = "fake.{MODEL}"\n\n'
        f"[models.providers.fake]\n"
        f'base_url = "{provider_base_url}"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["{MODEL}"]\n'
        f'reasoning_effort = "low"\n\n'
        # Nothing listens on the discard port of loopback.
        f"[models.providers.down]\n"
        f'base_url = "http://127.0.0.1:9/v1"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["down-model"]\n'
    )


CREATE_AGENTS = (
    "from agents.models import Agent; "
    f"Agent.objects.create(id='{AGENT_ID}', name='live', slug='live', role='worker', "
    f"profile='fake.{MODEL}', provider='llm-api', model_id='{MODEL}', reasoning_effort='low'); "
    f"Agent.objects.create(id='{DOWN_AGENT_ID}', name='down', slug='down', role='worker', "
    "profile='down.down-model', provider='llm-api', model_id='down-model')"
)


@pytest.fixture(scope="module")
def live_bridge(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Any) -> Iterator[Bridge]:
    """One server for the module: starting Daphne and creating the agents costs seconds per test."""
    with FakeOpenAI(models=[MODEL]) as provider:
        home = tmp_path_factory.mktemp("llm-live-home")
        _sqlite_template.copy_to(home)
        state = LiveState(home=home, env=live_env(home, {"CSGCLAW_LLM_INCLUDE_STREAM_USAGE": "true"}))
        (home / "config.toml").write_text(config_toml(provider.base_url))
        state.manage("shell", "-c", CREATE_AGENTS)
        server = start_daphne(state, state.env)
        try:
            yield Bridge(server=server, provider=provider)
        finally:
            server.stop()
            print(f"--- daphne {server.base_url} output ---\n{server.log()[-SERVER_LOG_TAIL:]}")


@pytest.fixture
def bridge(live_bridge: Bridge) -> Bridge:
    live_bridge.start_test()
    return live_bridge


def test_models_and_a_plain_completion_through_the_openai_client(bridge):
    client = bridge.client()

    models = client.models.list()
    completion = client.chat.completions.create(
        model="openai/whatever", messages=[{"role": "user", "content": "ping"}], max_tokens=16
    )

    assert [model.id for model in models.data] == [MODEL]
    assert completion.choices[0].message.content == "pong"
    assert completion.usage.total_tokens == USAGE["total_tokens"]
    [upstream] = bridge.provider.requests
    assert (upstream.method, upstream.path) == ("POST", "/v1/chat/completions")
    assert upstream.body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 16,
        "reasoning_effort": "low",
    }
    # The SDK's own headers (X-Stainless-*, its User-Agent, the server token) never reach the provider.
    assert set(upstream.headers) == ALLOWED_UPSTREAM_HEADERS
    assert upstream.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    [row] = bridge.usage_rows(1)
    assert (row["agent_id"], row["model"], row["provider"], row["outcome"]) == (AGENT_ID, MODEL, "fake", "ok")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == tuple(USAGE.values())


def test_a_stream_reaches_the_client_chunk_by_chunk(bridge):
    bridge.provider.stream_chunks, bridge.provider.chunk_interval = STREAM_CHUNKS, CHUNK_INTERVAL
    client = bridge.client()

    with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=[{"role": "user", "content": "count"}], stream=True
    ) as raw:
        first_arrival = None
        chunks = []
        for chunk in raw.parse():
            first_arrival = first_arrival or time.monotonic()
            chunks.append(chunk)

    [record] = bridge.provider.streams
    record.finished.wait(5)
    last_written = record.chunk_times[-1]
    # The first chunk arrived while the provider was still ~(chunks - 1) intervals from its last one.
    assert last_written - first_arrival > CHUNK_INTERVAL * (STREAM_CHUNKS - 2)
    assert raw.headers["x-accel-buffering"] == "no"
    assert int(raw.headers["x-csgclaw-overhead-ms"]) >= 0
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "".join(f"part {number} " for number in range(STREAM_CHUNKS))
    # CSGCLAW_LLM_INCLUDE_STREAM_USAGE asked the provider for a usage event, and the tap read it.
    assert chunks[-1].usage.total_tokens == USAGE["total_tokens"]
    assert bridge.provider.requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = bridge.usage_rows(1)
    assert (row["stream"], row["outcome"], row["total_tokens"]) == (1, "ok", USAGE["total_tokens"])
    assert row["ttfb_ms"] < row["latency_ms"] - CHUNK_INTERVAL * 1000


def test_a_client_disconnect_mid_stream_closes_the_provider_connection(bridge):
    bridge.provider.stream_chunks, bridge.provider.chunk_interval = 200, 0.05
    client = bridge.client()

    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "long"}], stream=True
    )
    first = next(iter(stream))
    stream.close()

    assert first.choices[0].delta.content == "part 0 "
    [record] = bridge.provider.streams
    assert record.disconnected.wait(10), "the provider kept streaming to a client that had left"
    assert len(record.chunk_times) < 200
    [row] = bridge.usage_rows(1)
    assert row["outcome"] == "client_disconnected"


def test_errors_reach_the_openai_client_as_openai_errors(bridge):
    client = bridge.client()
    bridge.provider.error_status = 429

    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError) as unknown_agent:
        bridge.client("u-ghost").models.list()
    with pytest.raises(openai.AuthenticationError):
        bridge.client(token="wrong-token").models.list()

    assert rate_limited.value.status_code == 429
    assert rate_limited.value.body["message"] == "fake provider error"
    assert unknown_agent.value.body == {"status": 404, "message": 'agent "u-ghost" not found'}
    [row] = bridge.usage_rows(1)
    assert (row["outcome"], row["status_code"]) == ("upstream_error", 429)


def test_an_unreachable_provider_is_a_502_for_the_client(bridge):
    response = httpx.post(
        f"{bridge.server.base_url}/api/bots/{DOWN_AGENT_ID}/llm/v1/chat/completions",
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        content=json.dumps({"messages": []}),
        trust_env=False,
        timeout=20,
    )

    assert response.status_code == 502
    assert response.text.startswith("send upstream request: ")
    [row] = bridge.usage_rows(1)
    assert (row["agent_id"], row["outcome"], row["status_code"]) == (DOWN_AGENT_ID, "transport_error", 0)
