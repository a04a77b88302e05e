"""The LLM client against respx: request body, retries, plain-chat fallback, context errors (§4.5)."""

from __future__ import annotations

import httpx
import pytest
import respx

from agent_runtime.llm import ContextTooLong, LLMClient, LLMError, ToolsRejected
from agent_runtime.tests.agent_fakes import make_settings
from agent_runtime.tests.model_script import LLM_URL, Script, text, tool_call

TOOLS = [{"type": "function", "function": {"name": "exec", "parameters": {"type": "object"}}}]
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


async def complete(settings, script, mock, tools=TOOLS):
    mock.post(LLM_URL).mock(side_effect=script)
    client = LLMClient(settings)
    try:
        return await client.complete(MESSAGES, tools, max_tokens=settings.max_tokens), client
    finally:
        await client.aclose()


async def test_request_shape_and_reply(tmp_path, mock):
    script = Script(tool_call("exec", "Running.", command="ls"))
    route = mock.post(LLM_URL).mock(side_effect=script)
    client = LLMClient(make_settings(tmp_path))
    reply = await client.complete(MESSAGES, TOOLS, max_tokens=100)
    await client.aclose()
    request = route.calls[0].request
    assert request.headers["authorization"] == "Bearer box-token-secret"
    assert request.headers["accept"] == "application/json"
    assert script.requests[0] == {
        "model": "scripted-model",
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": "auto",
        "max_tokens": 100,
        "temperature": 0.7,
    }
    assert reply.content == "Running."
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("exec", '{"command": "ls"}')]


@pytest.mark.parametrize("model", ["glm-4", "o1-mini", "GPT-5"])
async def test_some_models_take_max_completion_tokens(tmp_path, model):
    body = LLMClient(make_settings(tmp_path, model=model)).body(MESSAGES, [], 50)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body and "tools" not in body


async def test_content_parts_and_no_choices(tmp_path, mock):
    parts = httpx.Response(200, json={"choices": [{"message": {"content": [{"type": "text", "text": "a"}]}}]})
    reply, _ = await complete(make_settings(tmp_path), Script(parts), mock)
    assert reply.content == "a"
    mock.routes.clear()
    reply, _ = await complete(
        make_settings(tmp_path), Script(httpx.Response(200, json={"choices": []})), mock
    )
    assert reply.content == "" and reply.tool_calls == []


async def test_429_then_200_is_two_calls(tmp_path, mock):
    script = Script(httpx.Response(429, headers={"retry-after": "1"}, text="slow down"), text("ok"))
    reply, client = await complete(make_settings(tmp_path), script, mock)
    assert reply.content == "ok" and client.calls == 2


async def test_500_three_times_fails_with_the_error_text(tmp_path, mock):
    script = Script(*[httpx.Response(500, json={"error": {"message": "x" * 400}})] * 3)
    with pytest.raises(LLMError) as failure:
        await complete(make_settings(tmp_path), script, mock)
    assert len(script.requests) == 3
    assert str(failure.value) == "HTTP 500: " + "x" * 300


async def test_other_statuses_fail_at_once(tmp_path, mock):
    script = Script(httpx.Response(401, text="unauthorized\n"))
    with pytest.raises(LLMError, match=r"^HTTP 401: unauthorized$"):
        await complete(make_settings(tmp_path), script, mock)
    assert len(script.requests) == 1


async def test_network_errors_and_timeouts_are_retried(tmp_path, mock):
    mock.post(LLM_URL).mock(side_effect=httpx.ConnectError("refused"))
    client = LLMClient(make_settings(tmp_path))
    with pytest.raises(LLMError, match=r"^ConnectError: refused$"):
        await client.complete(MESSAGES, [], max_tokens=10)
    assert client.calls == 3
    mock.routes.clear()
    mock.post(LLM_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(LLMError, match=r"^timed out after 120 s$"):
        await client.complete(MESSAGES, [], max_tokens=10)
    await client.aclose()


async def test_tools_rejected_switches_to_plain_chat(tmp_path, mock):
    script = Script(httpx.Response(400, json={"error": {"message": "tool_choice is not supported"}}))
    mock.post(LLM_URL).mock(side_effect=script)
    client = LLMClient(make_settings(tmp_path))
    with pytest.raises(ToolsRejected):
        await client.complete(MESSAGES, TOOLS, max_tokens=10)
    assert client.plain_chat is True
    assert "tools" not in client.body(MESSAGES, TOOLS, 10)
    await client.aclose()


async def test_a_context_error_is_raised_for_the_caller_to_trim(tmp_path, mock):
    script = Script(httpx.Response(400, text="This model's maximum context length is 4096 tokens"))
    with pytest.raises(ContextTooLong):
        await complete(make_settings(tmp_path), script, mock)
