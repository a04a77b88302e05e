"""The bridge's provider side (bots/llm/upstream.py): its request, errors, deadlines (llm-bridge.md §6–§7)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bots.llm.upstream import USER_AGENT
from bots.llm.views import OVERHEAD_HEADER
from bots.models import LlmOutcome
from bots.tests.llm_bridge import (
    ANSWER,
    CHAT,
    PROVIDER_KEY,
    SHARED_TOKEN,
    ProviderStream,
    call,
    chat_body,
    delta,
    provider_toml,
    sse,
    usage_rows,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("default_config", "settle_usage_writes"),
]

ALLOWED_UPSTREAM_HEADERS = {
    "host",
    "content-length",
    "authorization",
    "content-type",
    "accept",
    "accept-encoding",
    "user-agent",
}


# --- the provider request (§6.1) -----------------------------------------------------------------------


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


async def test_a_provider_key_that_cannot_be_a_header_is_502_and_never_sent(agent, provider, write_config):
    write_config(provider_toml("remote", api_key="ключ"))

    response = await call(CHAT, chat_body())

    assert response.status == 502
    header_error = 'invalid header field value for "Authorization": not ASCII'
    assert response.text == f"send upstream request: {header_error}\n"
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
