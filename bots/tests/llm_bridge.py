"""Helpers of the LLM bridge's tests: config.toml tables, agents, calls through the ASGI application."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import respx
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from agents.models import Agent
from bots.llm.usage import llm_usage_writes_settled
from bots.models import LlmUsage
from csgclaw_site.tests.asgi_scope import http_scope

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


async def usage_rows() -> list[LlmUsage]:
    await llm_usage_writes_settled()
    return await sync_to_async(lambda: list(LlmUsage.objects.order_by("id")))()


def sent_upstream(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


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


async def client_leaves(
    communicator: ApplicationCommunicator, provider: ProviderStream | None = None
) -> None:
    """The client hangs up mid-call; the view ends, and with `provider` that provider stream is closed."""
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)
    if provider is not None:
        await asyncio.wait_for(provider.closed.wait(), 5)


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
