"""Bearer auth of every protected route (http-api.md §1.4, events.md §3.1 and §4), through ASGI.

Each route × each way of presenting (or not presenting) a token: a refusal is exactly 401 `unauthorized`
in plain text without `WWW-Authenticate`; an acceptance reaches the route's own answer. Streams are read
only up to the response start. Also the check order around auth: 404 before 401 before 405 on the bot
routes, 404 before 405 before 401 on the Feishu relay route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async

from agents.models import Agent, AgentRole
from core.config import clear_config_cache

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

TOKEN = "auth-matrix-token"
AGENT = "u-alice"
OTHER_AGENT = "u-bob"
CONFIG = f"""
[server]
access_token = "  {TOKEN}  "

[models]
default = "remote.gpt-5.4"

[models.providers.remote]
base_url = "https://llm.example.test/v1"
api_key = "sk-test"
models = ["gpt-5.4"]
"""


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    # What an accepted request gets (the route's own answer to an empty body / a fresh stream).
    accepted_status: int
    wrong_method: str
    # True for the Feishu relay route, whose method check comes before auth.
    method_before_auth: bool = False

    def __str__(self) -> str:
        return self.name


ROUTES = [
    Route("bot events", "GET", f"/api/bots/{AGENT}/events", 200, "POST"),
    Route("bot events/", "GET", f"/api/bots/{AGENT}/events/", 200, "DELETE"),
    Route("bot send", "POST", f"/api/bots/{AGENT}/messages/send", 400, "GET"),
    Route("llm models", "GET", f"/api/bots/{AGENT}/llm/models", 200, "POST"),
    Route("llm v1 models", "GET", f"/api/bots/{AGENT}/llm/v1/models", 200, "PUT"),
    Route("llm chat", "POST", f"/api/bots/{AGENT}/llm/chat/completions", 400, "GET"),
    Route("llm v1 chat", "POST", f"/api/bots/{AGENT}/llm/v1/chat/completions", 400, "PATCH"),
    Route(
        "feishu relay events",
        "GET",
        f"/api/v1/channels/feishu/bots/{AGENT}/events",
        200,
        "POST",
        method_before_auth=True,
    ),
]


@dataclass(frozen=True)
class Credential:
    name: str
    # Builds the Authorization header from the agents' tokens; None sends no header.
    header: Callable[[dict[str, str]], str | None]
    accepted: bool
    no_auth: bool = False

    def __str__(self) -> str:
        return self.name


CREDENTIALS = [
    Credential("no header", lambda tokens: None, accepted=False),
    Credential("empty header", lambda tokens: "", accepted=False),
    Credential("wrong token", lambda tokens: "Bearer not-the-token", accepted=False),
    Credential("lower-case bearer", lambda tokens: f"bearer {TOKEN}", accepted=False),
    Credential("two spaces", lambda tokens: f"Bearer  {TOKEN}", accepted=False),
    Credential("trailing space", lambda tokens: f"Bearer {TOKEN} ", accepted=False),
    Credential("no scheme", lambda tokens: TOKEN, accepted=False),
    Credential("basic scheme", lambda tokens: f"Basic {TOKEN}", accepted=False),
    Credential("another agent's token", lambda tokens: f"Bearer {tokens[OTHER_AGENT]}", accepted=False),
    Credential("right token", lambda tokens: f"Bearer {TOKEN}", accepted=True),
    Credential("this agent's own token", lambda tokens: f"Bearer {tokens[AGENT]}", accepted=True),
    Credential("no_auth, no header", lambda tokens: None, accepted=True, no_auth=True),
    Credential("no_auth, wrong token", lambda tokens: "Bearer nope", accepted=True, no_auth=True),
]


@pytest.fixture
def write_config(settings, tmp_path) -> Iterator[Callable[..., None]]:
    def write(*, no_auth: bool = False) -> None:
        text = CONFIG.replace("[server]\n", f"[server]\nno_auth = {str(no_auth).lower()}\n")
        settings.CSGCLAW_CONFIG.write_text(text)
        clear_config_cache()

    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30
    write()
    yield write
    clear_config_cache()


@pytest.fixture
async def tokens(write_config) -> dict[str, str]:
    """The api tokens of agent `u-alice` (whose routes are called) and agent `u-bob`."""

    def create() -> dict[str, str]:
        return {
            agent_id: Agent.objects.create(
                id=agent_id, name=agent_id[2:], slug=agent_id[2:], role=AgentRole.WORKER
            ).api_token
            for agent_id in (AGENT, OTHER_AGENT)
        }

    return await sync_to_async(create)()


async def request(asgi_stream, method: str, path: str, authorization: str | None = None):
    headers = {} if authorization is None else {"Authorization": authorization}
    return await asgi_stream(path, method=method, headers=headers)


async def assert_refused(stream) -> None:
    assert stream.status == 401
    assert await stream.chunk() == b"unauthorized\n"
    assert stream.headers["content-type"] == "text/plain; charset=utf-8"
    assert "www-authenticate" not in stream.headers


@pytest.mark.parametrize("credential", CREDENTIALS, ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_auth_matrix(asgi_stream, tokens, write_config, route: Route, credential: Credential):
    if credential.no_auth:
        write_config(no_auth=True)

    stream = await request(asgi_stream, route.method, route.path, credential.header(tokens))

    if credential.accepted:
        assert stream.status == route.accepted_status, await stream.chunk()
    else:
        await assert_refused(stream)


def test_the_agent_tokens_are_43_url_safe_characters_and_differ(db):
    first = Agent.objects.create(id=AGENT, name="alice", slug="alice", role=AgentRole.WORKER)
    second = Agent.objects.create(id=OTHER_AGENT, name="bob", slug="bob", role=AgentRole.WORKER)

    assert len(first.api_token) == 43 and first.api_token != second.api_token
    assert set(first.api_token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


async def test_an_agent_token_opens_no_other_bot_id(asgi_stream, tokens):
    for path in (f"/api/bots/{OTHER_AGENT}/events", "/api/bots/u-nobody/messages/send"):
        stream = await request(asgi_stream, "GET", path, f"Bearer {tokens[AGENT]}")
        await assert_refused(stream)


BAD_PATHS = [
    "/api/bots/u-alice",
    "/api/bots/u-alice/",
    "/api/bots//events",
    "/api/bots/u-alice/nope",
    "/api/bots/u-alice/llm/v2/models",
    "/api/bots/u-alice/messages",
    "/api/v1/bots/u-alice/events",
    "/api/v1/channels/feishu/bots/ /events",
    "/api/v1/channels/feishu/bots//events",
    "/api/v1/channels/feishu/bots/u-alice/events/",
    "/api/v1/channels/feishu/bots/u-alice/messages",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", BAD_PATHS)
async def test_a_bad_path_is_404_before_auth(asgi_stream, tokens, path, method):
    stream = await request(asgi_stream, method, path)

    assert stream.status == 404
    assert await stream.chunk() == b"404 page not found\n"


@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_auth_and_method_checks_come_in_the_routes_order(asgi_stream, tokens, route: Route):
    unauthenticated = await request(asgi_stream, route.wrong_method, route.path)
    authenticated = await request(asgi_stream, route.wrong_method, route.path, f"Bearer {TOKEN}")

    if route.method_before_auth:
        assert unauthenticated.status == 405
        assert await unauthenticated.chunk() == b"method not allowed\n"
    else:
        await assert_refused(unauthenticated)
    assert authenticated.status == 405
    assert await authenticated.chunk() == b"method not allowed\n"


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_head_and_options_are_not_served(asgi_stream, tokens, route: Route, method):
    stream = await request(asgi_stream, method, route.path, f"Bearer {TOKEN}")

    assert stream.status == 405


async def test_while_config_toml_is_broken_the_last_loaded_token_still_works(asgi_stream, tokens, settings):
    path = f"/api/bots/{AGENT}/events"
    assert (await request(asgi_stream, "GET", path, f"Bearer {TOKEN}")).status == 200
    settings.CSGCLAW_CONFIG.write_text(CONFIG + "\n[server\n")

    assert (await request(asgi_stream, "GET", path, f"Bearer {TOKEN}")).status == 200
    await assert_refused(await request(asgi_stream, "GET", path, "Bearer your_access_token"))


async def test_a_config_toml_broken_since_start_opens_nothing_but_agent_tokens(asgi_stream, tokens, settings):
    path = f"/api/bots/{AGENT}/events"
    settings.CSGCLAW_CONFIG.write_text("[server]\nno_auth = true\naccess_token = 'x'\n[models\n")
    clear_config_cache()

    for authorization in (None, "Bearer your_access_token", "Bearer x", f"Bearer {TOKEN}"):
        await assert_refused(await request(asgi_stream, "GET", path, authorization))
    assert (await request(asgi_stream, "GET", path, f"Bearer {tokens[AGENT]}")).status == 200
