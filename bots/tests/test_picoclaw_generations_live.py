"""Both PicoClaw generations against one live server at once, each configured only by its box environment.

Two workers are created through the REST API on the fake sandbox provider, which records each box's
environment (participants.md §6.2). A 2026.6-style client reads the participant id, base and token from
one recorded environment and talks through the participant routes (§2, §3); a 2026.4-style client reads
the bot id from the other and talks through the bot routes (picoclaw-client.md). Both ask the LLM base they
were handed (§5), whose upstream is a fake OpenAI provider, and answer the admin in their direct rooms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from httpx_sse import aconnect_sse

from bots.tests.fake_openai import FakeOpenAI
from csgclaw_site.testing.live import LiveServer, LiveState, eventually, next_sse_event, stream_started
from im.identity import ADMIN_ID

SERVER_TOKEN = "generations-live-server-token"
PROVIDER_KEY = "sk-generations-live-provider"
MODEL = "fake-model"
# Neither client reads the model from its environment: the proxy answers with the agent's own (§5.3).
CLIENT_MODEL = "openai/any"
EVENT_SECONDS = 20.0


def config_toml(provider_base_url: str, advertise_base_url: str = "") -> str:
    advertise = f'advertise_base_url = "{advertise_base_url}"\n' if advertise_base_url else ""
    return (
        f'[server]\naccess_token = "{SERVER_TOKEN}"\n{advertise}\n'
        f'[models]\ndefault = "fake.{MODEL}"\n\n'
        "[models.providers.fake]\n"
        f'base_url = "{provider_base_url}"\n'
        f'api_key = "{PROVIDER_KEY}"\n'
        f'models = ["{MODEL}"]\n'
    )


def path_join(base: str, path: str) -> str:
    """`base` with `path` appended to its path, its query kept (participants.md §6.2)."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def test_path_join_keeps_the_prefix_and_query_of_the_base() -> None:
    events = path_join(
        "http://127.0.0.1:8080/v1?name=foo", "/api/v1/channels/csgclaw/participants/test-bot/events"
    )

    assert events == "http://127.0.0.1:8080/v1/api/v1/channels/csgclaw/participants/test-bot/events?name=foo"
    assert path_join("http://h:1/", "/api/bots/u-a/events") == "http://h:1/api/bots/u-a/events"


class BoxClient:
    """One box's csgclaw channel: where it streams and sends, its reply shape, its LLM base and key."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        generation: str,
        events_path: str,
        send_path: str,
        reply_body: Callable[[str, str], dict[str, Any]],
    ) -> None:
        base = env["PICOCLAW_CHANNELS_CSGCLAW_BASE_URL"]
        self.generation = generation
        self.events_url = path_join(base, events_path)
        self.send_url = path_join(base, send_path)
        self.reply_body = reply_body
        self.auth = {"Authorization": f"Bearer {env['PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN']}"}
        self.llm_base = env["OPENAI_BASE_URL"]
        self.llm_auth = {"Authorization": f"Bearer {env['OPENAI_API_KEY']}"}

    async def answer(self, http: httpx.AsyncClient, question: str) -> str:
        """Stream until the admin asks `question`, ask the LLM, reply in that room; the reply text."""
        headers = {**self.auth, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        async with aconnect_sse(http, "GET", self.events_url, headers=headers) as source:
            assert source.response.status_code == 200, await source.response.aread()
            events = source.aiter_sse()
            while True:
                event = await next_sse_event(events, timeout=EVENT_SECONDS)
                data = json.loads(event.data)
                if data["sender"]["id"] == ADMIN_ID and data["text"] == question:
                    break
        completion = await http.post(
            f"{self.llm_base}/chat/completions",
            headers=self.llm_auth,
            json={"model": CLIENT_MODEL, "messages": [{"role": "user", "content": question}]},
        )
        assert completion.status_code == 200, completion.text
        reply = f"[{self.generation}] {completion.json()['choices'][0]['message']['content']}"
        sent = await http.post(self.send_url, headers=self.auth, json=self.reply_body(data["room_id"], reply))
        assert sent.is_success, sent.text
        return reply


def picoclaw_2026_6(env: Mapping[str, str]) -> BoxClient:
    """Participant routes (§2, §3), addressed by the participant id only."""
    routes = f"/api/v1/channels/csgclaw/participants/{env['PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID']}"
    return BoxClient(
        env,
        generation="2026.6",
        events_path=f"{routes}/events",
        send_path=f"{routes}/messages",
        reply_body=lambda room, text: {"chat_id": room, "text": text, "context": {"chat_id": room}},
    )


def picoclaw_2026_4(env: Mapping[str, str]) -> BoxClient:
    """Bot routes (picoclaw-client.md §2, §5), addressed by the bot id only."""
    routes = f"/api/bots/{env['PICOCLAW_CHANNELS_CSGCLAW_BOT_ID']}"
    return BoxClient(
        env,
        generation="2026.4",
        events_path=f"{routes}/events",
        send_path=f"{routes}/messages/send",
        reply_body=lambda room, text: {"room_id": room, "text": text},
    )


def recorded_environment(home: Path, slug: str) -> dict[str, str]:
    """The environment the fake provider recorded for the agent's box."""
    record = json.loads((home / "agents" / slug / "boxlite" / "fake-box.json").read_text())
    return record["spec"]["env"]


async def direct_room_of(api: httpx.AsyncClient, user_id: str) -> str | None:
    rooms = (await api.get("/api/v1/rooms")).json()
    return next(
        (
            room["id"]
            for room in rooms
            if room["is_direct"] and sorted(room["members"]) == [ADMIN_ID, user_id]
        ),
        None,
    )


async def history(api: httpx.AsyncClient, room_id: str) -> list[dict[str, Any]]:
    return (await api.get("/api/v1/messages", params={"room_id": room_id})).json()


@pytest.mark.live
@pytest.mark.timeout(120, func_only=True)
async def test_a_2026_6_and_a_2026_4_box_answer_the_admin_through_one_server_at_once(
    live_state_factory: Callable[..., LiveState], daphne_factory: Callable[..., LiveServer]
) -> None:
    with FakeOpenAI(models=[MODEL]) as provider:
        state = live_state_factory()
        config = state.home / "config.toml"
        config.write_text(config_toml(provider.base_url))
        server = daphne_factory(state=state)
        # The boxes must reach this server, whose port is known only now; the server rereads a changed file.
        config.write_text(config_toml(provider.base_url, advertise_base_url=server.base_url))
        async with (
            server.client() as api,
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), trust_env=False) as boxes,
        ):
            for name in ("alpha", "bravo"):
                created = await api.post("/api/v1/agents", json={"name": name, "description": "generations"})
                assert created.status_code == 201, created.text
            new_env, old_env = (
                recorded_environment(state.home, "alpha"),
                recorded_environment(state.home, "bravo"),
            )
            new, old = picoclaw_2026_6(new_env), picoclaw_2026_4(old_env)
            rooms = {
                agent: await eventually(
                    lambda agent=agent: direct_room_of(api, agent), f"{agent}'s direct room"
                )
                for agent in ("u-alpha", "u-bravo")
            }
            questions = {"u-alpha": "alpha, are you on 2026.6?", "u-bravo": "bravo, are you on 2026.4?"}

            async def admin_asks() -> None:
                # A new bot stream starts at "now" (events.md §5.7); the participant stream catches up (§2.6).
                await eventually(
                    lambda: asyncio.to_thread(stream_started, state, kind="bot", key="u-bravo"),
                    "bravo's bot stream",
                )
                for agent, question in questions.items():
                    body = {"room_id": rooms[agent], "sender_id": ADMIN_ID, "content": question}
                    posted = await api.post("/api/v1/messages", json=body)
                    assert posted.status_code == 201, posted.text

            new_reply, old_reply, _ = await asyncio.gather(
                new.answer(boxes, questions["u-alpha"]), old.answer(boxes, questions["u-bravo"]), admin_asks()
            )

            async def seen_by_admin(agent: str, reply: str) -> bool:
                return any(
                    m["sender_id"] == agent and m["content"] == reply
                    for m in await history(api, rooms[agent])
                )

            assert await eventually(lambda: seen_by_admin("u-alpha", new_reply), "the 2026.6 reply in the IM")
            assert await eventually(lambda: seen_by_admin("u-bravo", old_reply), "the 2026.4 reply in the IM")

    assert (new_reply, old_reply) == ("[2026.6] pong", "[2026.4] pong")
    assert new.events_url == f"{server.base_url}/api/v1/channels/csgclaw/participants/pt-alpha/events"
    assert old.events_url == f"{server.base_url}/api/bots/u-bravo/events"
    assert new.llm_base == f"{server.base_url}/api/v1/agents/u-alpha/llm"
    assert old.llm_base == f"{server.base_url}/api/v1/agents/u-bravo/llm"
    for env in (new_env, old_env):
        assert PROVIDER_KEY not in json.dumps(env)
        assert provider.base_url not in json.dumps(env)
    upstream = [request for request in provider.requests if request.path == "/v1/chat/completions"]
    assert len(upstream) == 2
    assert {request.body["model"] for request in upstream} == {MODEL}
    assert {request.headers["authorization"] for request in upstream} == {f"Bearer {PROVIDER_KEY}"}
