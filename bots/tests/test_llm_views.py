"""The LLM bridge's views (bots/llm/views.py) over ASGI with a respx-mocked provider (llm-bridge.md §2–§6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.http import UnreadablePostError

from bots.llm import views as llm
from bots.llm.views import MAX_BODY_BYTES, OVERHEAD_HEADER
from bots.models import LlmOutcome
from bots.tests.llm_bridge import (
    AGENT_ID,
    ANSWER,
    CHAT,
    CHAT_PATHS,
    MESSAGES,
    MODEL,
    MODELS_PATHS,
    PROVIDER_KEY,
    SHARED_TOKEN,
    ProviderStream,
    asgi_communicator,
    body_chunk,
    call,
    chat_body,
    client_leaves,
    delta,
    header_map,
    make_agent,
    open_call,
    provider_toml,
    sent_upstream,
    sse,
    usage_rows,
)
from core.config import clear_config_cache

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("default_config", "settle_usage_writes"),
]


# --- models route --------------------------------------------------------------------------------------


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


# --- request rewrite (§5) ------------------------------------------------------------------------------


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


# --- true streaming (§6.2) -----------------------------------------------------------------------------


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

    await client_leaves(communicator)

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

    await client_leaves(communicator, stream)

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

    await client_leaves(communicator, stream)

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

    await client_leaves(communicator)

    assert cancelled.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.status_code) == (LlmOutcome.CLIENT_DISCONNECTED, 0)
