"""Box tokens on a live Daphne (security.md S2): what a worker box holds, what it opens, and rotation."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import aconnect_sse

from sandbox import boxspec
from sandbox.providers.fake import STATE_FILE_NAME

pytestmark = [pytest.mark.live, pytest.mark.timeout(120, func_only=True)]

SERVER_TOKEN = "box-tokens-live-server-token"
MODEL_FLAGS = ("--base-url", "http://127.0.0.1:9/v1", "--api-key", "sk-test", "--models", "test-model")


@pytest.fixture
def server(live_state_factory, daphne_factory):
    state = live_state_factory()
    # As a user sets up: onboard (here without a box for the manager), then the server.
    state.manage("onboard", "--no-input", "--skip-manager-box", "--access-token", SERVER_TOKEN, *MODEL_FLAGS)
    return daphne_factory(state=state)


def box_env(server, slug: str) -> dict[str, str]:
    """The environment the (fake) sandbox provider created the box with, as the box would see it."""
    record = boxspec.runtime_home(server.home, slug, "boxlite") / STATE_FILE_NAME
    return json.loads(record.read_text())["spec"]["env"]


OWN_STREAM = "/api/v1/channels/csgclaw/participants/pt-dev/events"
OWN_LLM = "/api/v1/agents/u-dev/llm/models"
MANAGER_STREAMS = ("/api/v1/channels/csgclaw/participants/pt-manager/events", "/api/bots/u-manager/events")
MANAGER_LLM = "/api/v1/agents/u-manager/llm/models"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stream_status(client: httpx.AsyncClient, path: str, token: str) -> int:
    async with aconnect_sse(client, "GET", path, headers=bearer(token)) as source:
        return source.response.status_code


async def test_a_worker_box_token_is_its_own_and_rotation_replaces_it(server):
    async with server.client() as api, server.client(timeout=httpx.Timeout(10.0, read=None)) as sse:
        created = await api.post("/api/v1/agents", json={"name": "dev"})
        assert created.status_code == 201, created.text
        env = box_env(server, "dev")
        token = env["PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN"]
        assert token == env["CSGCLAW_ACCESS_TOKEN"] == env["OPENAI_API_KEY"]
        assert SERVER_TOKEN not in json.dumps(env)

        assert await stream_status(sse, OWN_STREAM, token) == 200
        assert (await api.get(OWN_LLM, headers=bearer(token))).status_code == 200
        for stream in MANAGER_STREAMS:
            assert await stream_status(sse, stream, token) == 401
        assert (await api.get(MANAGER_LLM, headers=bearer(token))).status_code == 401

        assert (await api.post("/api/v1/agents/u-dev/token:rotate", headers=bearer(token))).status_code == 401
        rotated = await api.post("/api/v1/agents/u-dev/token:rotate", headers=bearer(SERVER_TOKEN))
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["id"] == "u-dev"

        new_token = box_env(server, "dev")["CSGCLAW_ACCESS_TOKEN"]
        assert new_token != token
        assert (await api.get(OWN_LLM, headers=bearer(token))).status_code == 401
        assert await stream_status(sse, OWN_STREAM, token) == 401
        assert (await api.get(OWN_LLM, headers=bearer(new_token))).status_code == 200
        assert await stream_status(sse, OWN_STREAM, new_token) == 200
        agent = (await api.get("/api/v1/agents/u-dev")).json()
        assert agent["status"] == "running"
