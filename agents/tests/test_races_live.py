"""Races on a live Daphne (security.md S8): concurrent identical creates and deletes give answers, not 500s,
and exactly one `*.deleted` event; on the machine's PostgreSQL (skipped, saying why, when it is not
reachable) and on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter

import pytest

pytestmark = [pytest.mark.live, pytest.mark.timeout(180, func_only=True)]

CONCURRENT = 10
MODEL_FLAGS = ("--base-url", "http://127.0.0.1:9/v1", "--api-key", "sk-test", "--models", "test-model")


def onboarded_server(live_state_factory, daphne_factory, extra_env=None):
    state = live_state_factory(extra_env=extra_env)
    state.manage("onboard", "--no-input", "--skip-manager-box", "--access-token", "races-token", *MODEL_FLAGS)
    return daphne_factory(state=state)


async def at_once(client, method: str, path: str, *, count: int, body=None) -> Counter:
    responses = await asyncio.gather(*(client.request(method, path, json=body) for _ in range(count)))
    return Counter((response.status_code, response.text.strip()) for response in responses)


def event_types(server, *, database_url: str | None) -> list[tuple[str, dict]]:
    query = "SELECT type, payload FROM im_event ORDER BY seq"
    if database_url is None:
        connection = sqlite3.connect(server.home / "csgclaw.sqlite3")
        try:
            return [(type_, as_json(payload)) for type_, payload in connection.execute(query)]
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(database_url) as connection:
        return [(type_, as_json(payload)) for type_, payload in connection.execute(query)]


def as_json(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value)


def deleted_agents(events: list[tuple[str, dict]], agent_id: str) -> int:
    return sum(
        1
        for type_, payload in events
        if type_ == "agent.updated"
        and payload["agent"]["id"] == agent_id
        and payload["agent"]["status"] == "deleted"
    )


async def check_races(server, *, database_url: str | None) -> None:
    async with server.client(timeout=60.0) as client:
        created = await at_once(client, "POST", "/api/v1/agents", count=CONCURRENT, body={"name": "racer"})
        assert created == {
            (201, created_text(created)): 1,
            (400, 'agent id "u-racer" already exists'): CONCURRENT - 1,
        }, created

        bots = await at_once(
            client, "POST", "/api/v1/bots", count=CONCURRENT, body={"name": "botracer", "role": "worker"}
        )
        assert all(status < 500 for status, _ in bots), bots
        assert sum(count for (status, _), count in bots.items() if status // 100 == 2) >= 1

        deleted = await at_once(client, "DELETE", "/api/v1/agents/u-racer", count=CONCURRENT)
        assert deleted == {(204, ""): 1, (404, "agent not found"): CONCURRENT - 1}, deleted

        room = await client.post("/api/v1/rooms", json={"title": "race room", "creator_id": "u-admin"})
        room_id = room.json()["id"]
        rooms = await at_once(client, "DELETE", f"/api/v1/rooms/{room_id}", count=CONCURRENT)
        assert rooms == {(204, ""): 1, (404, "room not found"): CONCURRENT - 1}, rooms

    events = await asyncio.to_thread(event_types, server, database_url=database_url)
    assert deleted_agents(events, "u-racer") == 1
    room_deletions = [payload for type_, payload in events if type_ == "room.deleted"]
    assert [payload["room_id"] for payload in room_deletions].count(room_id) == 1


def created_text(counter: Counter) -> str:
    return next(text for status, text in counter if status == 201)


async def test_concurrent_creates_and_deletes_on_postgresql(
    live_state_factory,
    daphne_factory,
    postgres_url,
):
    server = onboarded_server(live_state_factory, daphne_factory, extra_env={"DATABASE_URL": postgres_url})
    await check_races(server, database_url=postgres_url)


async def test_concurrent_creates_and_deletes_on_sqlite(live_state_factory, daphne_factory):
    server = onboarded_server(live_state_factory, daphne_factory)
    await check_races(server, database_url=None)


async def test_the_same_agent_deleted_four_times_at_once_is_one_204_and_no_502(
    live_state_factory, daphne_factory
):
    server = onboarded_server(live_state_factory, daphne_factory)
    async with server.client(timeout=60.0) as client:
        assert (await client.post("/api/v1/agents", json={"name": "twice"})).status_code == 201
        deleted = await at_once(client, "DELETE", "/api/v1/agents/u-twice", count=4)

    assert deleted == {(204, ""): 1, (404, "agent not found"): 3}, deleted


def test_the_agent_lock_holds_other_processes_off_on_postgresql(
    live_state_factory,
    postgres_url,
):
    import subprocess

    import psycopg

    from agents.lifecycle.locks import agent_lock_key
    from csgclaw_site.testing.live import PYTHON, REPO_ROOT

    state = live_state_factory(extra_env={"DATABASE_URL": postgres_url})
    holder = subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "import sys\nfrom agents.lifecycle import agent_lock\n"
            "with agent_lock('u-locked'):\n    print('held', flush=True)\n    sys.stdin.readline()\n",
        ],
        cwd=REPO_ROOT,
        env=state.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        key = agent_lock_key("u-locked")
        with psycopg.connect(postgres_url, autocommit=True) as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is False
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(30) == 0
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is True
    finally:
        if holder.poll() is None:
            holder.kill()
