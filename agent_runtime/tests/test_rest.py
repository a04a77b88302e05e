"""REST access with the box token and the 30 s caches (builtin-runtime.md §3.1)."""

from __future__ import annotations

import httpx

from agent_runtime.rest import RestApi, make_client
from agent_runtime.tests.channel_fakes import TOKEN, ScriptedServer, make_settings

USERS = [
    {"id": "u-admin", "name": "admin", "role": "admin"},
    {"id": "u-dev", "name": "dev", "role": "worker"},
]
ROOMS = [
    {
        "id": "room-1",
        "title": "t",
        "is_direct": False,
        "members": ["u-admin", "u-dev", "u-gone"],
        "messages": [1],
    }
]


def _rest(tmp_path, server, clock=None, **overrides):
    settings = make_settings(tmp_path, **overrides)
    return RestApi(settings, make_client(settings, transport=server.transport), clock=clock or (lambda: 0.0))


async def test_requests_carry_the_token_and_keep_the_base_query(tmp_path):
    server = ScriptedServer()
    server.always("GET", "/v1/api/v1/agents", httpx.Response(200, json=[]))
    rest = _rest(tmp_path, server, base_url="http://server.test/v1?name=foo")
    assert await rest.request("GET", "/api/v1/agents", params={"x": "1"}) == (200, [])
    (request,) = server.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.url.params["name"] == "foo" and request.url.params["x"] == "1"


async def test_non_json_body_comes_back_as_text(tmp_path):
    server = ScriptedServer()
    server.always("POST", "/api/v1/agents", httpx.Response(400, text='agent name "alice" already exists\n'))
    assert await _rest(tmp_path, server).request("POST", "/api/v1/agents", json={}) == (
        400,
        'agent name "alice" already exists\n',
    )


async def test_users_are_cached_for_thirty_seconds_and_reread_on_a_miss(tmp_path):
    now = [100.0]
    server = ScriptedServer()
    server.always("GET", "/api/v1/users", httpx.Response(200, json=USERS))
    rest = _rest(tmp_path, server, clock=lambda: now[0])
    assert (await rest.user("u-admin"))["role"] == "admin"
    assert (await rest.user("u-dev"))["name"] == "dev"
    assert len(server.requests) == 1
    now[0] += 3
    assert await rest.user("u-new") is None
    assert len(server.requests) == 2
    assert await rest.user("u-new") is None
    assert len(server.requests) == 2
    now[0] += 31
    await rest.user("u-admin")
    assert len(server.requests) == 3


async def test_room_has_members_and_no_history(tmp_path):
    server = ScriptedServer()
    server.always("GET", "/api/v1/users", httpx.Response(200, json=USERS))
    server.always("GET", "/api/v1/rooms", httpx.Response(200, json=ROOMS))
    rest = _rest(tmp_path, server)
    room = await rest.room("room-1")
    assert "messages" not in room
    assert room["members"] == ["u-admin", "u-dev", "u-gone"]
    assert [user["name"] for user in room["member_users"]] == ["admin", "dev", "u-gone"]
    assert await rest.room("room-x") is None


async def test_agent_record_falls_back_to_the_bare_id_and_is_retried(tmp_path):
    server = ScriptedServer()
    server.queue("GET", "/api/v1/agents/u-dev", httpx.ConnectError("down"))
    server.queue("GET", "/api/v1/agents/u-dev", httpx.Response(200, json={"id": "u-dev", "name": "Dev"}))
    rest = _rest(tmp_path, server)
    assert await rest.agent() == {"id": "u-dev", "name": "dev"}
    assert (await rest.agent())["name"] == "Dev"
    assert (await rest.agent())["name"] == "Dev"
    assert len(server.requests) == 2


async def test_a_failing_list_is_not_refetched_on_every_lookup(tmp_path):
    server = ScriptedServer()
    server.always("GET", "/api/v1/users", httpx.Response(500, text="down"))
    rest = _rest(tmp_path, server)
    assert await rest.user("u-admin") is None
    assert await rest.user("u-admin") is None
    assert len(server.requests) == 1
