"""The participant bridge end to end on a live Daphne: stream, send and resume as a 2026.6 PicoClaw box."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import aconnect_sse

from csgclaw_site.testing.live import next_sse_event
from im.identity import ADMIN_ID

pytestmark = [pytest.mark.live, pytest.mark.timeout(60, func_only=True)]

TOKEN = "participant-live-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVENTS = "/api/v1/channels/csgclaw/participants/pt-dev/events"
SEND = "/api/v1/channels/csgclaw/participants/pt-dev/messages"
CONFIG = f"""
[server]
access_token = "{TOKEN}"

[models]
default = "remote.test-model"

[models.providers.remote]
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-test"
models = ["test-model"]
"""


@pytest.fixture
def server(live_state_factory, daphne_factory):
    state = live_state_factory()
    (state.home / "config.toml").write_text(CONFIG)
    return daphne_factory(state=state)


async def next_message(events):
    event = await next_sse_event(events, timeout=10)
    assert event.event == "message"
    return event


async def admin_says(client: httpx.AsyncClient, room_id: str, content: str) -> dict:
    response = await client.post(
        "/api/v1/messages", json={"room_id": room_id, "sender_id": ADMIN_ID, "content": content}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_participant_streams_sends_and_resumes(server):
    async with server.client() as api, server.client(timeout=httpx.Timeout(10.0, read=None)) as sse:
        created = await api.post("/api/v1/agents", json={"name": "dev", "description": "builder"})
        assert created.status_code == 201, created.text

        async with aconnect_sse(sse, "GET", EVENTS, headers=AUTH) as source:
            assert source.response.headers["content-type"] == "text/event-stream"
            events = source.aiter_sse()
            # Catch-up on the first connect: the admin's intro in the agent's direct room.
            intro = await next_message(events)
            data = json.loads(intro.data)
            assert intro.id == data["message_id"]
            assert data["chat_type"] == "direct"
            assert data["context"]["account"] == "pt-dev"
            room_id = data["room_id"]

            sent = await api.post(
                SEND, headers=AUTH, json={"chat_id": room_id, "text": "on it", "message_id": "pico-1"}
            )
            assert sent.status_code == 200, sent.text
            assert sent.json() == {"message_id": "pico-1"}
            again = await api.post(
                SEND, headers=AUTH, json={"chat_id": room_id, "text": "on it!", "message_id": "pico-1"}
            )
            assert again.json() == {"message_id": "pico-1"}

            live = await admin_says(api, room_id, "status?")
            frame = await next_message(events)
            assert frame.id == live["id"]
            assert json.loads(frame.data)["text"] == "status?"

        missed = await admin_says(api, room_id, "while you were away")
        async with aconnect_sse(sse, "GET", EVENTS, headers=AUTH) as source:
            resumed = await next_message(source.aiter_sse())
        assert resumed.id == missed["id"]

        history = (await api.get("/api/v1/messages", params={"room_id": room_id})).json()
        replies = [message for message in history if message["id"] == "pico-1"]
        assert [(message["sender_id"], message["content"]) for message in replies] == [("u-dev", "on it!")]
