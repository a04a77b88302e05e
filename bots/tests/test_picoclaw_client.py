"""A PicoClaw-style agent holds a conversation with the admin through a live Daphne (picoclaw-client.md).

The client below behaves as the real `csgclaw` channel does: it parses frames line by line, ignores
comments and events other than `message`, never sends Last-Event-ID, reconnects with a 1 s backoff that
doubles and is never reset, and answers through the send endpoint. The server caps every stream at a
short lifetime, so the client must reconnect during the conversation and still miss nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest

from csgclaw_site.testing.live import eventually
from im.identity import ADMIN_ID

pytestmark = [pytest.mark.live, pytest.mark.timeout(120, func_only=True)]

TOKEN = "picoclaw-live-token"
BOT = "u-alice"
# Short enough that a few exchanges span several stream lifetimes.
STREAM_LIFETIME = 2.0
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
REPLY_PREFIX = "echo: "
WAIT_SECONDS = 30.0


class PicoClawStyleClient:
    """The inbound/outbound behaviour of PicoClaw's csgclaw channel (picoclaw-client.md §2–§6)."""

    INITIAL_BACKOFF = 1.0
    MAX_BACKOFF = 30.0
    SEND_RETRIES = 3

    def __init__(self, base_url: str, bot_id: str, token: str) -> None:
        self.bot_id = bot_id
        self.events_url = f"{base_url}/api/bots/{bot_id}/events"
        self.send_url = f"{base_url}/api/bots/{bot_id}/messages/send"
        self.auth = {"Authorization": f"Bearer {token}"}
        self.connections = 0
        self.failed_attempts: list[str] = []
        # Set while a stream is open and has sent its first heartbeat (its start cursor is resolved).
        self.listening = asyncio.Event()
        self.inbound: list[dict[str, Any]] = []
        self.replied_to: list[str] = []

    async def run(self) -> None:
        backoff = self.INITIAL_BACKOFF
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), trust_env=False) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await self._listen(http)
                self.listening.clear()
                await asyncio.sleep(backoff)
                # Never reset after a success, as in PicoClaw.
                backoff = min(backoff * 2, self.MAX_BACKOFF)

    async def _listen(self, http: httpx.AsyncClient) -> None:
        headers = {**self.auth, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        async with http.stream("GET", self.events_url, headers=headers) as response:
            content_type = response.headers.get("content-type", "")
            if response.status_code != 200 or "text/event-stream" not in content_type:
                self.failed_attempts.append(f"{response.status_code} {(await response.aread())[:4096]!r}")
                return
            self.connections += 1
            event_type, data_lines = "", []
            async for raw_line in response.aiter_lines():
                line = raw_line.rstrip("\r\n")
                if not line:
                    await self._dispatch(http, event_type, data_lines)
                    event_type, data_lines = "", []
                elif line.startswith(":"):
                    if line == ": ping":
                        self.listening.set()
                elif line.startswith("event:"):
                    event_type = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data_lines.append(line.removeprefix("data:").strip())
                # `id:` and `retry:` lines are ignored.

    async def _dispatch(self, http: httpx.AsyncClient, event_type: str, data_lines: list[str]) -> None:
        data = "\n".join(data_lines)
        if not data or event_type not in ("", "message"):
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        room_id = event.get("room_id") or event.get("chat_id") or ""
        sender_id = (event.get("sender") or {}).get("id", "")
        if not room_id or not sender_id:
            return
        self.inbound.append(event)
        text = event.get("text", "").strip()
        if event.get("chat_type", "").lower() == "group" and f'<at user_id="{self.bot_id}"' not in text:
            return
        await self._send(http, room_id, REPLY_PREFIX + text)
        self.replied_to.append(event["message_id"])

    async def _send(self, http: httpx.AsyncClient, room_id: str, text: str) -> None:
        for attempt in range(self.SEND_RETRIES + 1):
            try:
                response = await http.post(
                    self.send_url, json={"room_id": room_id, "text": text}, headers=self.auth
                )
            except httpx.HTTPError:
                retry = True
            else:
                if response.is_success:
                    return
                retry = response.status_code == 429 or response.status_code >= 500
            if not retry or attempt == self.SEND_RETRIES:
                raise AssertionError(f"send failed: {text!r}")
            await asyncio.sleep(min(0.5 * 2**attempt, 8.0))


class ImWatcher:
    """Every `message.created` on the IM stream, from the bootstrap cursor on (as the web UI reads it)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def run(self, client: httpx.AsyncClient, cursor: int) -> None:
        headers = {"Last-Event-ID": str(cursor)}
        while True:
            with contextlib.suppress(httpx.HTTPError):
                async with client.stream("GET", "/api/v1/im/events", headers=headers) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("id: "):
                            headers["Last-Event-ID"] = line.removeprefix("id: ")
                        elif line.startswith("data: "):
                            event = json.loads(line.removeprefix("data: "))
                            if event["type"] == "message.created":
                                self.messages.append(event["message"])
            await asyncio.sleep(0.1)


@pytest.fixture
def server(live_state_factory, daphne_factory):
    state = live_state_factory()
    (state.home / "config.toml").write_text(CONFIG)
    return daphne_factory(state=state, sse_lifetime=STREAM_LIFETIME)


async def test_a_picoclaw_style_agent_converses_with_the_admin_across_stream_lifetimes(server):
    agent = PicoClawStyleClient(server.base_url, BOT, TOKEN)
    watcher = ImWatcher()
    async with server.client() as api, server.client(timeout=httpx.Timeout(10.0, read=None)) as im:
        tasks = [asyncio.create_task(agent.run())]
        try:
            bootstrap = (await api.get("/api/v1/im/bootstrap")).json()
            tasks.append(asyncio.create_task(watcher.run(im, bootstrap["last_event_id"])))
            # The agent's box connects before its IM user exists: an open, empty stream.
            await asyncio.wait_for(agent.listening.wait(), WAIT_SECONDS)

            created = await api.post("/api/v1/agents", json={"name": "alice", "description": "test lead"})
            assert created.status_code == 201, created.text
            room_id = await eventually(lambda: direct_room_of(api, BOT), "the agent's direct room")

            async def history(room: str = room_id) -> list[dict[str, Any]]:
                response = await api.get("/api/v1/messages", params={"room_id": room})
                return response.json()

            async def answered(message: dict[str, Any], room: str = room_id) -> dict[str, Any] | None:
                expected = REPLY_PREFIX + message["content"]
                replies = [
                    m for m in await history(room) if m["sender_id"] == BOT and m["content"] == expected
                ]
                return replies[0] if replies else None

            intro = next(m for m in await history() if m["sender_id"] == ADMIN_ID)
            assert intro["content"].startswith("@alice Write this down in your memory")
            exchanges = [(intro, await eventually(lambda: answered(intro), "the answer to the intro"))]

            for number in range(1, 4):
                # Every other question waits for the server to end the agent's stream: it is posted
                # while the client sleeps in its backoff, and only cursor memory can deliver it.
                while_disconnected = number % 2 == 0
                if while_disconnected:
                    await eventually(lambda: as_result(not agent.listening.is_set()), "the stream to end")
                question = await post_admin_message(api, room_id, f"question {number}")
                if while_disconnected:
                    assert not agent.listening.is_set(), "the question must be sent while the agent is away"
                reply = await eventually(
                    lambda q=question: answered(q), f"the answer to {question['content']!r}"
                )
                exchanges.append((question, reply))

            # Room history: each admin message is followed by exactly one answer from the agent.
            final = await history()
            spoken = [m for m in final if m["kind"] == "message"]
            assert [m["content"] for m in spoken[-2 * len(exchanges) :]] == [
                text
                for question, _ in exchanges
                for text in (question["content"], REPLY_PREFIX + question["content"])
            ]
            assert [m["id"] for m in spoken if m["sender_id"] == BOT][-len(exchanges) :] == [
                reply["id"] for _, reply in exchanges
            ]
            # In a group room the server delivers `@alice` too, but the agent answers only an <at> tag.
            group = await api.post(
                "/api/v1/rooms", json={"title": "team", "creator_id": ADMIN_ID, "member_ids": [BOT]}
            )
            group_id = group.json()["id"]
            untagged = await post_admin_message(api, group_id, "@alice a plain handle")
            tagged = await post_admin_message(api, group_id, "status, please", mention_id=BOT)
            assert tagged["content"] == '<at user_id="u-alice">alice</at> status, please'
            await eventually(lambda: answered(tagged, group_id), "the answer in the group room")
            assert [event["message_id"] for event in agent.inbound[-2:]] == [untagged["id"], tagged["id"]]
            assert agent.inbound[-1]["mentions"] == [BOT]

            # Delivered exactly once: no message was lost or repeated across the reconnects.
            assert agent.replied_to == [question["id"] for question, _ in exchanges] + [tagged["id"]]
            assert agent.connections >= 2
            assert agent.failed_attempts == []
            # The answers also reached the web UI's stream.
            reply_ids = {reply["id"] for _, reply in exchanges}
            await eventually(
                lambda: as_result(reply_ids <= {m["id"] for m in watcher.messages}),
                "the answers on the IM stream",
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def as_result(value: bool) -> bool:
    return value


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


async def post_admin_message(
    api: httpx.AsyncClient, room_id: str, content: str, *, mention_id: str = ""
) -> dict[str, Any]:
    body = {"room_id": room_id, "sender_id": ADMIN_ID, "content": content, "mention_id": mention_id}
    response = await api.post("/api/v1/messages", json=body)
    assert response.status_code == 201, response.text
    return response.json()
