"""The LLM bridge over Django's ASGI application with a respx-mocked provider (llm-bridge.md §2–§8)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.http import UnreadablePostError
from django.utils import timezone

from agents.models import Agent
from bots import selectors
from bots.llm import views as llm
from bots.llm.upstream import USER_AGENT
from bots.llm.usage import (
    EventStreamUsageTap,
    JsonUsageTap,
    LlmCall,
    Usage,
    llm_call_record,
    llm_usage_writes_settled,
)
from bots.llm.views import MAX_BODY_BYTES, OVERHEAD_HEADER
from bots.models import LlmOutcome, LlmUsage
from core.config import clear_config_cache
from core.errors import NotFound, Unavailable
from csgclaw_site.tests.asgi_scope import http_scope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]

SHARED_TOKEN = "shared-token"
PROVIDER_KEY = "sk-provider-secret-7f3a9"
BASE_URL = "https://llm.example.test/v1"
UPSTREAM_URL = f"{BASE_URL}/chat/completions"
AGENT_ID = "u-alice"
MODEL = "gpt-5.4"
CHAT_PATHS = [f"/api/bots/{AGENT_ID}/llm/chat/completions", f"/api/bots/{AGENT_ID}/llm/v1/chat/completions"]
MODELS_PATHS = [f"/api/bots/{AGENT_ID}/llm/models", f"/api/bots/{AGENT_ID}/llm/v1/models"]
CHAT = CHAT_PATHS[0]
MESSAGES = [{"role": "user", "content": "hi"}]
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
}
ALLOWED_UPSTREAM_HEADERS = {
    "host",
    "content-length",
    "authorization",
    "content-type",
    "accept",
    "accept-encoding",
    "user-agent",
}


# --- config and agents --------------------------------------------------------------------------------


def provider_toml(
    name: str,
    *,
    models: Sequence[str] = (MODEL,),
    reasoning_effort: str = "",
    base_url: str = BASE_URL,
    api_key: str = PROVIDER_KEY,
) -> str:
    return (
        f"[models.providers.{name}]\n"
        f"base_url = {json.dumps(base_url)}\n"
        f"api_key = {json.dumps(api_key)}\n"
        f"models = {json.dumps(list(models))}\n"
        f"reasoning_effort = {json.dumps(reasoning_effort)}\n"
    )


@pytest.fixture
def write_config(settings, tmp_path) -> Iterator[Any]:
    """`write_config(*provider_tables, default=..., models_extra=...)` writes this test's config.toml."""
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = None
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = None
    settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE = False

    def write(*providers: str, default: str = f"remote.{MODEL}", models_extra: str = "") -> None:
        text = (
            f'[server]\naccess_token = "{SHARED_TOKEN}"\n\n'
            f'[models]\ndefault = "{default}"\n{models_extra}\n' + "\n".join(providers)
        )
        settings.CSGCLAW_CONFIG.write_text(text)
        # Rewrites within one mtime tick must still be seen.
        clear_config_cache()

    yield write
    clear_config_cache()


@pytest.fixture(autouse=True)
def default_config(write_config) -> None:
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"], reasoning_effort="medium"))


def make_agent(
    agent_id: str = AGENT_ID,
    *,
    profile: str = f"remote.{MODEL}",
    provider: str = "llm-api",
    model_id: str = MODEL,
    reasoning_effort: str = "medium",
) -> Agent:
    slug = agent_id.removeprefix("u-").lower()
    return Agent.objects.create(
        id=agent_id,
        name=slug,
        slug=slug,
        role="worker",
        profile=profile,
        provider=provider,
        model_id=model_id,
        reasoning_effort=reasoning_effort,
    )


@pytest.fixture
def agent() -> Agent:
    return make_agent()


@pytest.fixture(autouse=True)
async def settle_usage_writes() -> AsyncIterator[None]:
    """Rows are written in the background after the response; none may outlive its test."""
    yield
    await llm_usage_writes_settled()


@pytest.fixture
def provider() -> Iterator[respx.Route]:
    """The mocked provider endpoint; every other host is unreachable."""
    with respx.mock(assert_all_called=False) as router:
        yield router.post(UPSTREAM_URL)


async def usage_rows() -> list[LlmUsage]:
    await llm_usage_writes_settled()
    return await sync_to_async(lambda: list(LlmUsage.objects.order_by("id")))()


def sent_upstream(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


# --- talking to the ASGI application -----------------------------------------------------------------


@dataclass
class AsgiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def asgi_communicator(
    method: str, path: str, *, token: str | None = SHARED_TOKEN, headers: Mapping[str, str] | None = None
) -> ApplicationCommunicator:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    scope = http_scope(method, path, headers=all_headers)
    return ApplicationCommunicator(get_asgi_application(), scope)


async def open_call(
    path: str = CHAT,
    body: Any = None,
    *,
    method: str = "POST",
    raw: bytes | None = None,
    token: str | None = SHARED_TOKEN,
    headers: Mapping[str, str] | None = None,
) -> tuple[ApplicationCommunicator, dict[str, Any]]:
    """Send a request and wait for the response's start message; the body is left to the caller."""
    communicator = asgi_communicator(method, path, token=token, headers=headers)
    if raw is None:
        raw = b"" if body is None else json.dumps(body).encode()
    await communicator.send_input({"type": "http.request", "body": raw, "more_body": False})
    start = await communicator.receive_output(5)
    assert start["type"] == "http.response.start", start
    return communicator, start


def header_map(start: dict[str, Any]) -> dict[str, str]:
    return {name.decode().lower(): value.decode() for name, value in start["headers"]}


async def body_chunk(communicator: ApplicationCommunicator, timeout: float = 5.0) -> tuple[bytes, bool]:
    message = await communicator.receive_output(timeout)
    assert message["type"] == "http.response.body", message
    return message.get("body", b""), message.get("more_body", False)


async def call(
    path: str = CHAT,
    body: Any = None,
    *,
    method: str = "POST",
    raw: bytes | None = None,
    token: str | None = SHARED_TOKEN,
    headers: Mapping[str, str] | None = None,
) -> AsgiResponse:
    communicator, start = await open_call(path, body, method=method, raw=raw, token=token, headers=headers)
    chunks, more = [], True
    while more:
        chunk, more = await body_chunk(communicator)
        chunks.append(chunk)
    await communicator.wait(5)
    return AsgiResponse(status=start["status"], headers=header_map(start), body=b"".join(chunks))


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "client-model", "messages": MESSAGES, **fields}


class ProviderStream(httpx.AsyncByteStream):
    """A provider body whose chunks from index `hold_at` on wait for `release`; records its closing."""

    def __init__(self, chunks: Sequence[bytes], *, hold_at: int = 1, fail_at: int | None = None) -> None:
        self.chunks = list(chunks)
        self.hold_at = hold_at
        self.fail_at = fail_at
        self.release = asyncio.Event()
        self.closed = asyncio.Event()
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index >= self.hold_at:
                await self.release.wait()
            if index == self.fail_at:
                raise httpx.ReadError("connection reset by peer")
            self.sent += 1
            yield chunk

    async def aclose(self) -> None:
        self.closed.set()


def sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [
        f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode() for event in events
    ]


def delta(text: str, usage: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": text}}]}
    if usage is not None or text == "":
        event["usage"] = usage
    return event


# --- models route ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MODELS_PATHS)
async def test_models_lists_exactly_the_agents_model(agent, path):
    response = await call(path, method="GET")

    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "csgclaw"}],
    }
    assert int(response.headers[OVERHEAD_HEADER.lower()]) >= 0


async def test_models_never_asks_the_provider(agent, provider):
    await call(MODELS_PATHS[0], method="GET")

    assert not provider.called


@pytest.mark.parametrize(
    ("path", "method", "status", "text"),
    [
        (MODELS_PATHS[0], "POST", 405, "method not allowed"),
        (MODELS_PATHS[1], "HEAD", 405, "method not allowed"),
        (CHAT_PATHS[0], "GET", 405, "method not allowed"),
        (CHAT_PATHS[1], "PUT", 405, "method not allowed"),
        (f"/api/bots/{AGENT_ID}/llm/v2/models", "GET", 404, "404 page not found"),
        ("/api/bots//llm/models", "GET", 404, "404 page not found"),
    ],
)
async def test_path_and_method_checks(agent, path, method, status, text):
    response = await call(path, method=method)

    assert (response.status, response.text) == (status, text + "\n")


@pytest.mark.parametrize("path", [MODELS_PATHS[0], CHAT])
async def test_missing_or_wrong_bearer_is_401_before_the_method(agent, path):
    for token in (None, "wrong", SHARED_TOKEN.upper(), SHARED_TOKEN + " "):
        response = await call(path, method="DELETE", token=token)

        assert (response.status, response.text) == (401, "unauthorized\n")


async def test_an_agents_own_token_opens_only_its_own_routes(agent, provider):
    other = await sync_to_async(make_agent)("u-bob")
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    own_models = await call(MODELS_PATHS[0], method="GET", token=agent.api_token)
    own_chat = await call(CHAT, chat_body(), token=agent.api_token)
    others = await call("/api/bots/u-bob/llm/models", method="GET", token=agent.api_token)
    others_own = await call("/api/bots/u-bob/llm/models", method="GET", token=other.api_token)

    assert (own_models.status, own_chat.status) == (200, 200)
    assert (others.status, others.text) == (401, "unauthorized\n")
    assert others_own.status == 200
    # The box's token never reaches the provider.
    assert provider.calls.last.request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"


# --- model resolution (§3) -----------------------------------------------------------------------------


async def test_unknown_agent_is_404_on_both_routes_even_with_a_bad_body():
    models = await call("/api/bots/u-ghost/llm/models", method="GET")
    chat = await call("/api/bots/u-ghost/llm/chat/completions", raw=b"[not json")

    assert (models.status, models.text) == (404, 'agent "u-ghost" not found\n')
    assert (chat.status, chat.text) == (404, 'agent "u-ghost" not found\n')
    assert OVERHEAD_HEADER.lower() in chat.headers


@pytest.mark.parametrize("path", MODELS_PATHS)
async def test_nul_in_the_bot_id_becomes_the_replacement_character(path):
    response = await call(path.replace(AGENT_ID, "u-a\x00b"), method="GET")

    assert (response.status, response.text) == (404, 'agent "u-a\ufffdb" not found\n')


async def test_an_over_long_bot_id_is_an_unknown_agent():
    long_id = "u-" + "x" * 200

    response = await call(f"/api/bots/{long_id}/llm/models", method="GET")

    assert (response.status, response.text) == (404, f'agent "{long_id}" not found\n')


async def test_a_broken_config_is_503_with_the_load_error(agent, settings):
    settings.CSGCLAW_CONFIG.write_text("[models\nbroken")
    clear_config_cache()

    # Auth knows no shared token then (none was loaded since the cache was cleared): the agent's own.
    models = await call(MODELS_PATHS[0], method="GET", token=agent.api_token)
    chat = await call(CHAT, chat_body(), token=agent.api_token)

    for response in (models, chat):
        assert response.status == 503
        assert response.text.startswith("models config is unavailable: parse config ")
        assert OVERHEAD_HEADER.lower() in response.headers


async def test_a_legacy_section_is_503(agent, settings):
    settings.CSGCLAW_CONFIG.write_text('[llm]\nbase_url = "x"\n')
    clear_config_cache()

    response = await call(MODELS_PATHS[0], method="GET", token=agent.api_token)

    assert response.status == 503
    assert response.text.startswith("models config is unavailable: legacy config section [llm]")


async def test_the_agent_is_looked_up_before_the_config(settings):
    assert (await call("/api/bots/u-ghost/llm/models", method="GET")).status == 404
    # Not cleared: the shared token of the config loaded before the file broke stays valid (bridge/auth.py).
    settings.CSGCLAW_CONFIG.write_text("not toml at all [")

    response = await call("/api/bots/u-ghost/llm/models", method="GET")

    assert (response.status, response.text) == (404, 'agent "u-ghost" not found\n')


async def test_json_errors_when_the_client_asks_for_them(agent):
    response = await call(MODELS_PATHS[0], method="POST", headers={"accept": "application/json"})

    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {"error": {"status": 405, "message": "method not allowed"}}


def resolved_model_id(agent_id: str = AGENT_ID) -> str:
    return selectors.llm_target_get(agent_id).model.model_id


def test_the_stored_profile_wins(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), provider_toml("zeta", models=["z-1"]))
    make_agent(profile="zeta.z-1", model_id=MODEL)

    target = selectors.llm_target_get(AGENT_ID)

    assert (target.model.provider_name, target.model.model_id) == ("zeta", "z-1")
    assert (target.request_timeout, target.idle_timeout) == (300.0, 60.0)


def test_a_stale_profile_falls_back_to_the_first_provider_listing_the_model_id(write_config):
    write_config(
        provider_toml("b-second", models=["qwen"]),
        provider_toml("a-first", models=["other", "qwen"], base_url="https://a.test/v1/"),
        default="b-second",
    )
    make_agent(profile="gone.qwen", model_id="qwen", reasoning_effort="")

    model = selectors.llm_target_get(AGENT_ID).model

    assert (model.provider_name, model.model_id, model.base_url) == ("a-first", "qwen", "https://a.test/v1")


def test_the_model_id_fallback_honours_the_agents_reasoning_effort(write_config):
    write_config(
        provider_toml("a-low", models=["qwen"], reasoning_effort="low"),
        provider_toml("b-high", models=["qwen"], reasoning_effort=" HIGH "),
        default="a-low",
    )
    make_agent(profile="", model_id="qwen", reasoning_effort="high")

    model = selectors.llm_target_get(AGENT_ID).model

    assert (model.provider_name, model.reasoning_effort) == ("b-high", "high")


def test_the_model_id_fallback_is_only_for_llm_api_agents(write_config):
    write_config(provider_toml("remote", models=[MODEL]), provider_toml("other", models=["qwen"]))
    make_agent(profile="", provider="something-else", model_id="qwen")

    assert resolved_model_id() == MODEL


def test_the_default_selector_is_the_last_fallback(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), default="remote.gpt-4o")
    make_agent(profile="gone.model", model_id="not-listed-anywhere")

    assert resolved_model_id() == "gpt-4o"


def test_nothing_resolving_is_404(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), default="")
    make_agent(profile="gone.model", model_id="not-listed-anywhere")

    with pytest.raises(NotFound) as raised:
        selectors.llm_target_get(AGENT_ID)

    assert raised.value.message == f'no llm profile could be resolved for agent "{AGENT_ID}"'


def test_a_missing_config_file_is_an_empty_configuration(settings):
    settings.CSGCLAW_CONFIG.unlink()
    clear_config_cache()
    make_agent()

    with pytest.raises(NotFound, match="no llm profile could be resolved"):
        selectors.llm_target_get(AGENT_ID)


def test_an_unreadable_config_is_unavailable(settings):
    settings.CSGCLAW_CONFIG.write_text("[models]\nrequest_timeout = -1\n")
    clear_config_cache()
    make_agent()

    with pytest.raises(Unavailable) as raised:
        selectors.llm_target_get(AGENT_ID)

    assert raised.value.message.startswith("models config is unavailable: parse models.request_timeout: ")


def test_the_current_config_is_used_without_a_restart(write_config):
    make_agent(profile="remote.gpt-4o", model_id="gpt-4o")
    assert selectors.llm_target_get(AGENT_ID).model.base_url == BASE_URL

    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"], base_url="https://moved.test/v1"))

    assert selectors.llm_target_get(AGENT_ID).model.base_url == "https://moved.test/v1"


def test_timeouts_come_from_config_and_settings_override_them(write_config, settings):
    write_config(provider_toml("remote"), models_extra='request_timeout = "12.5"\nidle_timeout = 7\n')
    make_agent()
    assert selectors.llm_target_get(AGENT_ID).request_timeout == 12.5

    settings.CSGCLAW_LLM_IDLE_TIMEOUT = 0.25

    target = selectors.llm_target_get(AGENT_ID)
    assert (target.request_timeout, target.idle_timeout) == (12.5, 0.25)


# --- request rewrite (§5) and the provider request (§6.1) ---------------------------------------------


@pytest.mark.parametrize("path", CHAT_PATHS)
async def test_a_plain_call_is_relayed_byte_for_byte(agent, provider, path):
    answer = json.dumps(ANSWER, indent=1).encode()
    provider.mock(
        return_value=httpx.Response(200, content=answer, headers={"content-type": "application/json"})
    )

    response = await call(path, chat_body())

    assert response.status == 200
    assert response.body == answer
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers[OVERHEAD_HEADER.lower()]) >= 0
    assert "x-accel-buffering" not in response.headers
    assert provider.calls.last.request.url.path == "/v1/chat/completions"


async def test_the_provider_gets_only_allow_listed_headers(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    client_headers = {
        "cookie": "sessionid=abc",
        "x-request-id": "client-trace",
        "user-agent": "OpenAI/Python 2.54.0",
        "openai-organization": "org-client",
        "accept": "application/json",
        "accept-encoding": "gzip, br",
        "x-forwarded-for": "10.0.0.9",
    }

    await call(CHAT, chat_body(), headers=client_headers)

    sent = provider.calls.last.request.headers
    assert set(sent.keys()) == ALLOWED_UPSTREAM_HEADERS
    assert sent["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert sent["content-type"] == "application/json"
    assert sent["accept"] == "application/json"
    assert sent["accept-encoding"] == "identity"
    assert sent["user-agent"] == USER_AGENT
    assert SHARED_TOKEN not in str(sent.raw)


async def test_a_streaming_call_asks_for_an_event_stream(agent, provider):
    provider.mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"data: [DONE]\n\n"
        )
    )

    await call(CHAT, chat_body(stream=True))

    assert provider.calls.last.request.headers["accept"] == "text/event-stream"


async def test_the_key_is_sent_even_when_empty(agent, provider, write_config):
    write_config(provider_toml("remote", api_key="", reasoning_effort="medium"))
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    await call(CHAT, chat_body())

    assert provider.calls.last.request.headers["authorization"] == "Bearer "


@pytest.mark.parametrize("client_model", ["client-model", "openai/gpt-5.4", None])
async def test_the_model_is_always_the_agents(agent, provider, client_model):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    body = {"messages": MESSAGES} if client_model is None else {"model": client_model, "messages": MESSAGES}

    await call(CHAT, body)

    assert sent_upstream(provider)["model"] == MODEL


ABSENT = object()


@pytest.mark.parametrize(
    ("provider_effort", "requested", "sent"),
    [
        ("medium", ABSENT, "medium"),
        ("medium", None, "medium"),
        ("medium", "", "medium"),
        ("medium", "  \t", "medium"),
        ("medium", "high", "high"),
        ("medium", " High ", " High "),
        ("medium", 3, 3),
        ("", ABSENT, ABSENT),
        ("", "  ", "  "),
        ("", None, None),
        (" HIGH ", ABSENT, "high"),
    ],
)
async def test_reasoning_effort_injection(agent, provider, write_config, provider_effort, requested, sent):
    write_config(provider_toml("remote", reasoning_effort=provider_effort))
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    body = chat_body() if requested is ABSENT else chat_body(reasoning_effort=requested)

    await call(CHAT, body)

    upstream = sent_upstream(provider)
    assert upstream.get("reasoning_effort", ABSENT) == sent


async def test_every_other_field_passes_through(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    body = {
        "model": "client-model",
        "messages": [{"role": "user", "content": "nul \u0000 and ünïcode 🙂"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "max_tokens": 64,
        "max_completion_tokens": 128,
        "temperature": 0.7,
        "stream": False,
        "stream_options": None,
        "vendor_extension": {"nested": [1, 2.5, True, None]},
    }

    await call(CHAT, body)

    assert sent_upstream(provider) == {**body, "model": MODEL, "reasoning_effort": "medium"}
    assert b", " not in provider.calls.last.request.content  # compact JSON


async def test_the_table_example_keeps_key_order(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    await call(CHAT, {"messages": MESSAGES, "reasoning_effort": "high"})

    assert list(sent_upstream(provider)) == ["messages", "reasoning_effort", "model"]


@pytest.mark.parametrize(
    ("include_usage", "fields", "stream_options"),
    [
        (False, {"stream": True}, ABSENT),
        (True, {"stream": True}, {"include_usage": True}),
        (True, {"stream": True, "stream_options": {"include_usage": False}}, {"include_usage": False}),
        (True, {"stream": False}, ABSENT),
        (True, {"stream": "true"}, ABSENT),
    ],
)
async def test_stream_usage_is_requested_only_when_configured(
    agent, provider, settings, include_usage, fields, stream_options
):
    settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE = include_usage
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    await call(CHAT, chat_body(**fields))

    assert sent_upstream(provider).get("stream_options", ABSENT) == stream_options


# --- request body checks (§2) --------------------------------------------------------------------------


async def test_a_body_over_ten_mib_is_413_and_never_sent(agent, provider):
    oversized = b"{" + b" " * MAX_BODY_BYTES

    response = await call(CHAT, raw=oversized)

    assert (response.status, response.text) == (413, "request body too large\n")
    assert not provider.called
    assert OVERHEAD_HEADER.lower() in response.headers
    assert await usage_rows() == []


async def test_the_size_check_comes_before_the_agent_lookup():
    response = await call("/api/bots/u-ghost/llm/chat/completions", raw=b" " * (MAX_BODY_BYTES + 1))

    assert response.status == 413


async def test_a_two_mib_body_is_accepted_whole(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    content = "x" * (2 * 1024 * 1024)

    response = await call(CHAT, chat_body(messages=[{"role": "user", "content": content}]))

    assert response.status == 200
    assert sent_upstream(provider)["messages"][0]["content"] == content


async def test_a_body_of_exactly_ten_mib_is_accepted(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))
    body = chat_body(messages=[{"role": "user", "content": ""}])
    padding = MAX_BODY_BYTES - len(json.dumps(body).encode())
    body["messages"][0]["content"] = "y" * padding
    raw = json.dumps(body).encode()
    assert len(raw) == MAX_BODY_BYTES

    response = await call(CHAT, raw=raw)

    assert response.status == 200


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", "decode request: EOF"),
        (b"[1, 2]", "decode request: body must be a JSON object"),
        (b'"a string"', "decode request: body must be a JSON object"),
        (b'{"messages": NaN}', "decode request: "),
        (b'{"a": 1} trailing', "decode request: "),
        (b"{not json", "decode request: "),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(agent, provider, raw, text):
    response = await call(CHAT, raw=raw)

    assert response.status == 400
    assert response.text.startswith(text)
    assert not provider.called
    assert OVERHEAD_HEADER.lower() in response.headers


async def test_an_unreadable_body_is_400(agent, provider, monkeypatch):
    def lost_connection(request: Any, limit: int) -> bytes:
        raise UnreadablePostError("connection lost while reading the body")

    monkeypatch.setattr(llm, "read_body", lost_connection)

    response = await call(CHAT, chat_body())

    assert (response.status, response.text) == (400, "read request body\n")
    assert not provider.called


# --- upstream errors and timeouts (§6.2, §7) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content", "content_type"),
    [
        (429, b'{"error":{"message":"rate limited","type":"rate_limit"}}', "application/json"),
        (500, b"internal provider failure", "text/plain; charset=utf-8"),
        (400, b'{"error":{"message":"bad tools"}}', None),
    ],
)
async def test_provider_errors_are_relayed_with_status_body_and_type(
    agent, provider, status, content, content_type
):
    headers = {"content-type": content_type} if content_type else {}
    provider.mock(return_value=httpx.Response(status, content=content, headers=headers))

    response = await call(CHAT, chat_body(stream=True))

    assert response.status == status
    assert response.body == content
    assert response.headers["content-type"] == (content_type or "application/json")
    assert OVERHEAD_HEADER.lower() in response.headers
    [row] = await usage_rows()
    assert (row.outcome, row.status_code, row.stream) == (LlmOutcome.UPSTREAM_ERROR, status, True)
    assert row.error.startswith(f"upstream status {status}")


@pytest.mark.parametrize("accept", [None, "application/json"])
async def test_an_unreachable_provider_is_502(agent, provider, accept):
    provider.mock(side_effect=httpx.ConnectError("connection refused"))

    response = await call(CHAT, chat_body(), headers={"accept": accept} if accept else None)

    assert response.status == 502
    message = "send upstream request: connection refused"
    if accept:
        assert json.loads(response.body) == {"error": {"status": 502, "message": message}}
    else:
        assert response.text == message + "\n"
    assert OVERHEAD_HEADER.lower() in response.headers
    [row] = await usage_rows()
    assert (row.outcome, row.status_code, row.error) == (LlmOutcome.TRANSPORT_ERROR, 0, message)


async def test_a_real_connection_failure_is_502(agent, write_config):
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    write_config(provider_toml("remote", base_url="http://127.0.0.1:9/v1"))

    response = await call(CHAT, chat_body())

    assert response.status == 502
    assert response.text.startswith("send upstream request: ")


async def test_a_provider_key_that_cannot_be_a_header_is_502_and_never_sent(agent, provider, write_config):
    write_config(provider_toml("remote", api_key="ключ"))

    response = await call(CHAT, chat_body())

    assert response.status == 502
    header_error = 'invalid header field value for "Authorization": not ASCII'
    assert response.text == f"send upstream request: {header_error}\n"
    assert not provider.called


async def test_a_provider_that_never_answers_is_504(agent, provider, settings):
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = 0.5
    cancelled = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(30)
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    provider.mock(side_effect=hang)

    started = asyncio.get_running_loop().time()
    response = await call(CHAT, chat_body())

    assert (response.status, response.text) == (504, "upstream request timed out\n")
    assert 0.4 < asyncio.get_running_loop().time() - started < 5
    assert cancelled.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.status_code, row.error) == (LlmOutcome.TIMEOUT, 0, "upstream request timed out")


async def test_the_configured_request_timeout_applies(agent, provider, write_config):
    write_config(provider_toml("remote"), models_extra="request_timeout = 0.3\n")

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    provider.mock(side_effect=hang)

    response = await call(CHAT, chat_body())

    assert response.status == 504


async def test_an_idle_stream_ends_with_an_error_event(agent, provider, settings):
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = 0.3
    stream = ProviderStream(sse(delta("a"), delta("b")), hold_at=1)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    response = await call(CHAT, chat_body(stream=True))

    first, error = response.body.split(b"\n\n", 1)
    assert first + b"\n\n" == sse(delta("a"))[0]
    assert error == (
        b'data: {"error":{"message":"upstream stream idle for 0.3s","type":"upstream_error","code":504}}\n\n'
    )
    assert stream.closed.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.status_code, row.error) == (
        LlmOutcome.TIMEOUT,
        200,
        "upstream stream idle for 0.3s",
    )


async def test_the_total_deadline_cuts_a_slow_json_body(agent, provider, settings):
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = 0.5
    stream = ProviderStream([b'{"id":"chatcmpl-1",', b'"choices":[]}'], hold_at=1)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "application/json"}, stream=stream)
    )

    response = await call(CHAT, chat_body())

    # The status line was sent already: a JSON body just ends early.
    assert (response.status, response.body) == (200, b'{"id":"chatcmpl-1",')
    [row] = await usage_rows()
    assert (row.outcome, row.error, row.prompt_tokens) == (
        LlmOutcome.TIMEOUT,
        "upstream request timed out",
        None,
    )


async def test_a_transport_failure_mid_stream_ends_with_an_error_event(agent, provider):
    stream = ProviderStream(sse(delta("a"), delta("b")), hold_at=0, fail_at=1)
    stream.release.set()
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    response = await call(CHAT, chat_body(stream=True))

    frames = response.body.split(b"\n\n")
    assert frames[0] + b"\n\n" == sse(delta("a"))[0]
    error = json.loads(frames[1].removeprefix(b"data: "))
    assert error["error"]["code"] == 502
    assert error["error"]["type"] == "upstream_error"
    assert error["error"]["message"].startswith("read upstream response: ")
    [row] = await usage_rows()
    assert row.outcome == LlmOutcome.TRANSPORT_ERROR


# --- true streaming (§6.2) -------------------------------------------------------------------------------


async def test_the_first_chunk_reaches_the_client_before_the_provider_sends_the_rest(agent, provider):
    chunks = sse(
        delta("Hel"), delta("lo"), delta("", {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})
    )
    chunks.append(b"data: [DONE]\n\n")
    stream = ProviderStream(chunks, hold_at=1)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    communicator, start = await open_call(CHAT, chat_body(stream=True))

    headers = header_map(start)
    assert start["status"] == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert int(headers[OVERHEAD_HEADER.lower()]) >= 0
    first, more = await body_chunk(communicator)
    assert (first, more) == (chunks[0], True)
    assert not stream.release.is_set(), "the first chunk must not wait for the rest of the provider stream"
    await communicator.receive_nothing(0.2)

    stream.release.set()
    rest = []
    while more:
        chunk, more = await body_chunk(communicator)
        rest.append(chunk)
    await communicator.wait(5)

    assert b"".join(rest) == b"".join(chunks[1:])
    assert stream.closed.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.stream, row.status_code) == (LlmOutcome.OK, True, 200)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (4, 2, 6)
    assert 0 <= row.ttfb_ms <= row.latency_ms


async def test_a_client_that_leaves_right_after_done_got_the_whole_answer(agent, provider):
    chunks = sse(delta("a", {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}), "[DONE]")
    # The provider's last bytes after [DONE] are held back: the client leaves before they pass.
    stream = ProviderStream([*chunks, b"\n"], hold_at=2)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )
    communicator, _ = await open_call(CHAT, chat_body(stream=True))
    await body_chunk(communicator)
    await body_chunk(communicator)

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)

    [row] = await usage_rows()
    assert (row.outcome, row.error, row.total_tokens) == (LlmOutcome.OK, "", 10)


async def test_a_client_disconnect_closes_the_provider_stream(agent, provider):
    chunks = sse(delta("a", {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}), delta("b"))
    stream = ProviderStream(chunks, hold_at=1)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )
    communicator, _ = await open_call(CHAT, chat_body(stream=True))
    await body_chunk(communicator)

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)

    await asyncio.wait_for(stream.closed.wait(), 5)
    assert stream.sent == 1
    [row] = await usage_rows()
    assert (row.outcome, row.error) == (LlmOutcome.CLIENT_DISCONNECTED, "client disconnected")
    # A partial stream records what it saw.
    assert (row.prompt_tokens, row.total_tokens) == (9, 10)


async def test_a_disconnect_before_the_first_byte_closes_the_provider_stream(agent, provider):
    stream = ProviderStream(sse(delta("a")), hold_at=0)
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )
    communicator, start = await open_call(CHAT, chat_body(stream=True))
    assert start["status"] == 200

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)

    await asyncio.wait_for(stream.closed.wait(), 5)
    assert stream.sent == 0
    [row] = await usage_rows()
    assert (row.outcome, row.ttfb_ms) == (LlmOutcome.CLIENT_DISCONNECTED, None)


async def test_a_disconnect_before_the_response_headers_cancels_the_provider_request(agent, provider):
    waiting, cancelled = asyncio.Event(), asyncio.Event()

    async def slow_headers(request: httpx.Request) -> httpx.Response:
        waiting.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    provider.mock(side_effect=slow_headers)
    communicator = asgi_communicator("POST", CHAT)
    await communicator.send_input(
        {"type": "http.request", "body": json.dumps(chat_body()).encode(), "more_body": False}
    )
    await asyncio.wait_for(waiting.wait(), 5)

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)

    assert cancelled.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.status_code) == (LlmOutcome.CLIENT_DISCONNECTED, 0)


async def test_a_compressed_answer_is_relayed_decoded(agent, provider):
    import gzip

    plain = json.dumps(ANSWER).encode()
    provider.mock(
        return_value=httpx.Response(
            200,
            content=gzip.compress(plain),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    )

    response = await call(CHAT, chat_body())

    assert response.body == plain
    assert "content-encoding" not in response.headers
    [row] = await usage_rows()
    assert row.total_tokens == 8


# --- usage accounting (§8) ------------------------------------------------------------------------------


async def test_a_plain_call_records_one_row(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    response = await call(CHAT, chat_body())

    [row] = await usage_rows()
    assert (row.agent_id, row.model, row.provider, row.upstream_url) == (
        AGENT_ID,
        MODEL,
        "remote",
        UPSTREAM_URL,
    )
    assert (row.stream, row.status_code, row.outcome, row.error) == (False, 200, LlmOutcome.OK, "")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (3, 5, 8)
    assert row.overhead_ms == int(response.headers[OVERHEAD_HEADER.lower()])
    assert row.ttfb_ms is not None and row.latency_ms >= row.ttfb_ms


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, (0, 0, 0)),
        ({"prompt_tokens": 7}, (7, None, None)),
        (None, (None, None, None)),
        ({"prompt_tokens": "7", "completion_tokens": -1, "total_tokens": True}, (None, None, None)),
    ],
)
async def test_usage_of_a_plain_answer(agent, provider, usage, counts):
    answer = {**ANSWER, "usage": usage}
    provider.mock(return_value=httpx.Response(200, json=answer))

    await call(CHAT, chat_body())

    [row] = await usage_rows()
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == counts


async def test_a_stream_without_usage_records_none(agent, provider):
    body = b"".join(sse(delta("a"), delta("b"), "[DONE]"))
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )

    response = await call(CHAT, chat_body(stream=True))

    assert response.body == body
    [row] = await usage_rows()
    assert (row.outcome, row.prompt_tokens, row.total_tokens) == (LlmOutcome.OK, None, None)


async def test_each_call_records_its_own_row(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    for path in CHAT_PATHS:
        await call(path, chat_body())

    rows = await usage_rows()
    assert len(rows) == 2
    totals = await sync_to_async(selectors.llm_usage_totals)(AGENT_ID)
    assert (totals.calls, totals.prompt_tokens, totals.total_tokens) == (2, 6, 16)


def feed_all(tap: Any, chunks: Sequence[bytes]) -> Usage | None:
    for chunk in chunks:
        tap.feed(chunk)
    return tap.usage()


def test_event_stream_tap_keeps_the_last_usage_object():
    body = b"".join(
        sse(
            delta("a", {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
            delta("b", None),
            delta("", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
            "[DONE]",
        )
    )
    # Fed in 7-byte pieces, so lines are split across chunks, and with CRLF line ends.
    pieces = [body.replace(b"\n", b"\r\n")[i : i + 7] for i in range(0, len(body) * 2, 7)]

    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), pieces) == Usage(0, 0, 0)


def test_event_stream_tap_reads_a_final_line_without_newline_and_ignores_a_cut_one():
    complete = b'data: {"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}'

    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), [complete]) == Usage(2, 3, 5)
    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), [complete + b"\n\n", complete[:-9]]) == Usage(
        2, 3, 5
    )


def test_event_stream_tap_drops_an_overlong_line():
    tap = EventStreamUsageTap(limit=16)

    assert feed_all(tap, [b'data: {"usage":', b'{"prompt_tokens":1}}']) is None


def test_json_tap_reads_usage_split_across_chunks_and_gives_up_past_its_limit():
    body = json.dumps(ANSWER).encode()

    assert feed_all(JsonUsageTap(MAX_BODY_BYTES), [body[:10], body[10:30], body[30:]]) == Usage(3, 5, 8)
    assert feed_all(JsonUsageTap(limit=len(body) - 1), [body]) is None
    assert feed_all(JsonUsageTap(MAX_BODY_BYTES), [b"[1, 2]"]) is None


# --- admin --------------------------------------------------------------------------------------------


def make_usage_row(**fields: Any) -> LlmUsage:
    values = {
        "agent_id": AGENT_ID,
        "model": MODEL,
        "provider": "remote",
        "upstream_url": UPSTREAM_URL,
        "outcome": LlmOutcome.OK,
        "status_code": 200,
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8,
        "latency_ms": 12.5,
        **fields,
    }
    return LlmUsage.objects.create(**values)


def test_usage_admin_is_read_only_and_filterable(admin_client):
    row = make_usage_row()

    listing = admin_client.get("/admin/bots/llmusage/", {"outcome": "ok", "stream__exact": "0"})
    filtered_out = admin_client.get("/admin/bots/llmusage/", {"agent_id": "u-other"})
    detail = admin_client.get(f"/admin/bots/llmusage/{row.pk}/change/")
    add = admin_client.get("/admin/bots/llmusage/add/")
    delete = admin_client.post(f"/admin/bots/llmusage/{row.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert filtered_out.context["cl"].result_count == 0
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert (add.status_code, delete.status_code) == (403, 403)
    assert LlmUsage.objects.count() == 1


def test_agent_admin_shows_call_count_and_token_sums(admin_client, agent):
    make_usage_row()
    make_usage_row(prompt_tokens=10, completion_tokens=None, total_tokens=10)
    make_usage_row(agent_id="u-other", prompt_tokens=100)

    page = admin_client.get(f"/admin/agents/agent/{AGENT_ID}/change/")

    assert page.status_code == 200
    assert "2 calls; tokens: 13 prompt, 5 completion, 18 total" in page.content.decode()


async def test_a_call_is_recorded_once_even_if_asked_twice():
    started = asyncio.get_running_loop().time()
    call = LlmCall(
        agent_id=AGENT_ID,
        model=MODEL,
        provider="remote",
        upstream_url=UPSTREAM_URL,
        stream=False,
        started=started,
        created_at=timezone.now(),
    )
    call.failed(LlmOutcome.TIMEOUT, "upstream request timed out")

    llm_call_record(call)
    call.failed(LlmOutcome.CLIENT_DISCONNECTED, "client disconnected")
    llm_call_record(call)

    [row] = await usage_rows()
    assert row.outcome == LlmOutcome.TIMEOUT


def test_event_stream_tap_knows_when_the_answer_was_delivered():
    tap = EventStreamUsageTap(MAX_BODY_BYTES)

    tap.feed(b'data: {"choices":[]}\r\n\r\ndata: [DO')
    assert not tap.delivered
    tap.feed(b"NE]\r\n")
    assert tap.delivered
