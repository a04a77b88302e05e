"""The server's REST API with the box token (builtin-runtime.md §3.1); implements `RestClient`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from agent_runtime.contracts import Settings, join_url, strip_id

log = logging.getLogger("agent_runtime.channel")

# Users and rooms change rarely; 30 s keeps the prompt fresh without a request per message (§3.1).
CACHE_SECONDS = 30.0
# An unknown id re-reads the list at most this often, so a stream of strangers cannot flood the server.
MISS_REREAD_SECONDS = 2.0
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def make_client(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """One pooled client for stream, REST and sends. Proxies from the environment are ignored: the server is
    reached directly, as the local provider starts the box on the server's own network."""
    return httpx.AsyncClient(
        headers={"Authorization": f"Bearer {settings.token}"},
        timeout=REQUEST_TIMEOUT,
        trust_env=False,
        transport=transport,
    )


class _ListCache:
    """A whole REST list indexed by id, re-read when older than 30 s or on an unknown id."""

    def __init__(self, fetch, *, clock) -> None:
        self._fetch = fetch
        self._clock = clock
        self._items: dict[str, dict[str, Any]] = {}
        self._read_at = float("-inf")
        self._retry_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, item_id: str) -> dict[str, Any] | None:
        if self._stale(item_id):
            async with self._lock:
                if self._stale(item_id):
                    await self._reload()
        return self._items.get(item_id)

    def _stale(self, item_id: str) -> bool:
        now = self._clock()
        if now < self._retry_at:
            return False
        age = now - self._read_at
        return age > CACHE_SECONDS or (item_id not in self._items and age > MISS_REREAD_SECONDS)

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    async def _reload(self) -> None:
        try:
            items = await self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("REST list not refreshed: %s", exc)
            # Keep what we had and try again in a moment rather than on every lookup.
            self._retry_at = self._clock() + MISS_REREAD_SECONDS
            return
        self._items = {
            item["id"]: item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        self._read_at = self._clock()


class RestApi:
    """REST calls with the box token; users, rooms and this agent's own record cached."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient, *, clock=time.monotonic) -> None:
        self.settings = settings
        self.client = client
        self._users = _ListCache(self._fetch_users, clock=clock)
        self._rooms = _ListCache(self._fetch_rooms, clock=clock)
        self._agent: dict[str, Any] | None = None

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> tuple[int, Any]:
        url = httpx.URL(join_url(self.settings.base_url, path))
        if params:
            # `params=` would replace BASE's own query; merging keeps it (§3.1).
            url = url.copy_merge_params(params)
        response = await self.client.request(method, url, json=json, timeout=REQUEST_TIMEOUT)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    async def user(self, user_id: str) -> dict[str, Any] | None:
        return await self._users.get(user_id)

    async def room(self, room_id: str) -> dict[str, Any] | None:
        """The room of `GET /api/v1/rooms` without its history, plus `member_users`: the members' User
        objects (ids the user list does not know appear as `{"id": <id>, "name": <id>}`)."""
        room = await self._rooms.get(room_id)
        if room is None:
            return None
        member_users = []
        for member_id in room.get("members") or []:
            member_users.append(await self.user(member_id) or {"id": member_id, "name": member_id})
        return {**room, "member_users": member_users}

    async def agent(self) -> dict[str, Any]:
        """This agent's record (`GET /api/v1/agents/{BOT}`: name, description…); until it could be read,
        `{"id": BOT, "name": strip(BOT)}`, and the next call tries again (§3.1)."""
        if self._agent is not None:
            return self._agent
        try:
            status, body = await self.request("GET", f"/api/v1/agents/{self.settings.bot_id}")
        except httpx.HTTPError as exc:
            log.warning("agent %s not read: %s", self.settings.bot_id, exc)
            status, body = 0, None
        if status == 200 and isinstance(body, dict):
            self._agent = body
            return body
        if status:
            log.warning("agent %s not read: HTTP %s", self.settings.bot_id, status)
        return {"id": self.settings.bot_id, "name": strip_id(self.settings.bot_id)}

    def forget_rooms(self) -> None:
        """Team tools that change rooms call this so the next prompt sees the change."""
        self._rooms.invalidate()

    async def _fetch_users(self) -> list[Any]:
        return await self._fetch_list("/api/v1/users")

    async def _fetch_rooms(self) -> list[Any]:
        rooms = await self._fetch_list("/api/v1/rooms")
        # Histories are dropped at once: the prompt needs titles and members, and memory stays small.
        return [
            {k: v for k, v in room.items() if k != "messages"} for room in rooms if isinstance(room, dict)
        ]

    async def _fetch_list(self, path: str) -> list[Any]:
        status, body = await self.request("GET", path)
        if status != 200 or not isinstance(body, list):
            raise ValueError(f"GET {path}: HTTP {status}")
        return body
