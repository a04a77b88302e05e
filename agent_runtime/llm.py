"""The model client: PicoClaw's non-streaming chat-completions call, its retries and fallbacks (§4.5)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent_runtime.contracts import Settings, join_url

log = logging.getLogger("agent_runtime.llm")

# PicoClaw `MaxLLMRetries` = 2 with `LLMRetryBackoffSecs` = 2, doubling.
MAX_RETRIES = 2
RETRY_BASE_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
ERROR_DETAIL_CHARS = 300
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TOOL_WORDS = ("tools", "tool_choice", "function call")
REJECT_WORDS = ("not support", "unsupported", "unknown", "unrecognized", "not allowed", "extra")
CONTEXT_WORDS = (
    "context_length_exceeded",
    "context window",
    "context_window",
    "maximum context length",
    "token limit",
    "too many tokens",
    "max_tokens",
    "prompt is too long",
    "request too large",
)
COMPLETION_TOKEN_MODELS = ("glm", "o1", "gpt-5")


class LLMError(Exception):
    """A failed call; the text follows `LLM call failed: ` in the room."""


class ContextTooLong(LLMError):
    """The provider says the request is too big: the caller trims and retries."""


class ToolsRejected(Exception):
    """The model takes no tools; the client is in plain-chat mode from now on and the caller rebuilds."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    usage: dict[str, Any] = field(default_factory=dict)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        text = str(body["error"]["message"])
    elif isinstance(body, dict) and isinstance(body.get("error"), str):
        text = body["error"]
    else:
        text = response.text.strip()
    return text[:ERROR_DETAIL_CHARS]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def parse_reply(body: Any) -> Reply:
    if not isinstance(body, dict):
        raise ValueError("the response is not a JSON object")
    choices = body.get("choices") or []
    if not choices:
        return Reply(content="", usage=body.get("usage") or {})
    choice = choices[0] or {}
    message = choice.get("message") or {}
    calls = []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        calls.append(
            ToolCall(id=call.get("id") or f"call_{index}", name=function.get("name", ""), arguments=arguments)
        )
    return Reply(
        content=_content_text(message.get("content")),
        tool_calls=calls,
        finish_reason=choice.get("finish_reason") or "",
        usage=body.get("usage") or {},
    )


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class LLMClient:
    """One client per runtime: the connection pool, the call counter and the plain-chat switch."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.url = join_url(settings.llm_base_url, "/chat/completions")
        self.plain_chat = False
        self.calls = 0
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.settings.llm_timeout, connect=CONNECT_TIMEOUT_SECONDS),
                headers={
                    "Authorization": f"Bearer {self.settings.llm_api_key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def body(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_tokens: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if tools and not self.plain_chat:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        model = self.settings.model.lower()
        token_key = (
            "max_completion_tokens" if any(m in model for m in COMPLETION_TOKEN_MODELS) else "max_tokens"
        )
        body[token_key] = max_tokens
        body["temperature"] = self.settings.temperature
        return body

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, max_tokens: int
    ) -> Reply:
        body = self.body(messages, tools, max_tokens)
        attempt = 0
        while True:
            response, failure = await self._send(body)
            if response is not None and response.status_code == 200:
                try:
                    return parse_reply(response.json())
                except ValueError as exc:
                    raise LLMError(f"{type(exc).__name__}: {exc}") from None
            if response is not None:
                self._raise_for_body(response, "tools" in body)
            retryable = response is None or response.status_code in RETRYABLE_STATUSES
            if not retryable or attempt >= MAX_RETRIES:
                raise LLMError(failure)
            delay = _retry_after(response)
            if delay is None:
                delay = RETRY_BASE_SECONDS * 2**attempt
            attempt += 1
            log.info("llm retry %d in %.1fs reason=%s", attempt, delay, failure)
            await asyncio.sleep(delay * self.settings.backoff_scale)

    def _raise_for_body(self, response: httpx.Response, sent_tools: bool) -> None:
        status, text = response.status_code, response.text.lower()
        if (
            sent_tools
            and status in (400, 404, 422)
            and any(word in text for word in TOOL_WORDS)
            and any(word in text for word in REJECT_WORDS)
        ):
            self.plain_chat = True
            log.info("model rejects tools; plain chat from now on")
            raise ToolsRejected()
        if status in (400, 413) and any(word in text for word in CONTEXT_WORDS):
            raise ContextTooLong(f"HTTP {status}: {_detail(response)}")

    async def _send(self, body: dict[str, Any]) -> tuple[httpx.Response | None, str]:
        """One POST: the response, or None and the failure text."""
        self.calls += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.llm_timeout):
                response = await self._http().post(self.url, json=body)
        except (TimeoutError, httpx.TimeoutException):
            log.warning("llm call timed out after %g s", self.settings.llm_timeout)
            return None, f"timed out after {self.settings.llm_timeout:g} s"
        except httpx.HTTPError as exc:
            log.warning("llm call failed: %s: %s", type(exc).__name__, exc)
            return None, f"{type(exc).__name__}: {exc}"
        log.info(
            "llm call status=%d ms=%d bytes=%d overhead_ms=%s",
            response.status_code,
            (time.monotonic() - started) * 1000,
            len(response.content),
            response.headers.get("x-csgclaw-overhead-ms", "-"),
        )
        if response.status_code == 200:
            return response, ""
        return response, f"HTTP {response.status_code}: {_detail(response)}"
