"""Fakes of the loop's ports (outbox, journal, REST, status) and a settings builder for agent-half tests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent_runtime.contracts import Inbound, OutboundFile, SendResult, Settings
from agent_runtime.outbox import outbound_id


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    home = tmp_path / "home"
    workspace = home / ".picoclaw" / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        base_url="http://server.test",
        token="box-token-secret",
        bot_id="u-manager",
        participant_id="pt-manager",
        llm_base_url="http://llm.test/api/bots/u-manager/llm",
        llm_api_key="box-token-secret",
        model="scripted-model",
        home=home,
        workspace=workspace,
        backoff_scale=0.01,
    )
    return replace(settings, **overrides)


def inbound(
    message_id: str = "msg-1", *, room_id: str = "room-1", text: str = "hello", **fields: Any
) -> Inbound:
    values: dict[str, Any] = {
        "thread_root_id": "",
        "chat_type": "direct",
        "sender_id": "u-admin",
        "sender_name": "admin",
        "sender_role": "admin",
        "created_at": 0.0,
    }
    values.update(fields)
    return Inbound(message_id=message_id, room_id=room_id, text=text, **values)


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_with = ""

    def message_id(self, *, turn_id: str, room_id: str, thread_root_id: str, index: int) -> str:
        return outbound_id("bot", turn_id, room_id, thread_root_id, index)

    async def send(
        self,
        *,
        message_id: str,
        room_id: str,
        thread_root_id: str,
        text: str,
        file: OutboundFile | None = None,
    ) -> SendResult:
        if self.fail_with:
            return SendResult(message_id=message_id, ok=False, error=self.fail_with)
        sent: dict[str, Any] = {"id": message_id, "room_id": room_id, "thread_root_id": thread_root_id}
        sent["text"] = text
        if file is not None:
            sent["file"] = file
        self.sent.append(sent)
        return SendResult(message_id=message_id, ok=True)

    def texts(self, room_id: str | None = None) -> list[str]:
        return [m["text"] for m in self.sent if room_id is None or m["room_id"] == room_id]


class FakeJournal:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def started(self, message_id: str, *, turn_id: str) -> None:
        self.events.append(("start", message_id, turn_id))

    def done(self, message_id: str) -> None:
        self.events.append(("done", message_id, ""))

    def done_ids(self) -> list[str]:
        return [mid for op, mid, _ in self.events if op == "done"]


class FakeRest:
    """Answers `request` from a table of (method, path) → (status, body) or a list of those, in order."""

    def __init__(self, routes: dict[tuple[str, str], Any] | None = None, users: dict[str, Any] | None = None):
        self.routes = dict(routes or {})
        self.users = dict(users or {})
        self.rooms: dict[str, Any] = {}
        self.calls: list[tuple[str, str, Any, Any]] = []

    async def request(self, method: str, path: str, *, params=None, json=None) -> tuple[int, Any]:
        self.calls.append((method, path, params, json))
        answer = self.routes.get((method, path), (404, "404 page not found\n"))
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    async def user(self, user_id: str) -> dict[str, Any] | None:
        return self.users.get(user_id)

    async def room(self, room_id: str) -> dict[str, Any] | None:
        return self.rooms.get(room_id)


class FakeStatus:
    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def update(self, **fields: Any) -> None:
        self.fields.update(fields)


async def settle(predicate, timeout: float = 5.0) -> None:
    """Wait until `predicate()` is true (the loop runs turns as tasks)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
