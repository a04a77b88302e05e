"""The bot LLM bridge (llm-bridge.md): OpenAI-compatible routes per agent, relayed with true streaming.

The box calls these routes with the server token; the server picks the agent's model from the current
config.toml, swaps in the provider's key and relays the provider's answer byte for byte as it arrives.
The Responses API of the agent-scoped routes (participants.md §5.5–§5.6) shares the relay; its request
and answer conversions are in bots/llm/responses.py. Plain Django async views (not DRF), dispatched by
bots/bridge/dispatch.py and bots/participants/llm.py after the path and bearer checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from bots import selectors
from bots.llm import responses
from bots.llm.upstream import (
    CHAT_COMPLETIONS_PATH,
    EVENT_STREAM_TYPE,
    JSON_TYPE,
    RESPONSES_PATH,
    UpstreamTimeout,
    body_chunks,
    compact_json,
    media_type,
    next_chunk,
    provider_request,
    provider_url,
    read_whole_body,
    transport_error_text,
    upstream_client,
)
from bots.llm.usage import (
    CHAT_TOKEN_FIELDS,
    RESPONSES_TOKEN_FIELDS,
    EventStreamUsageTap,
    JsonUsageTap,
    LlmCall,
    ResponsesEventStreamUsageTap,
    UsageTap,
    llm_call_record,
    usage_from,
)
from bots.models import LlmOutcome
from core.config import ResolvedModel
from core.db.threads import BRIDGE_READ
from core.errors import DomainError
from core.http import (
    ONE_MIB,
    ApiError,
    decode_json_object,
    error_response,
    method_not_allowed,
    read_body,
    response_for_exception,
)

logger = logging.getLogger(__name__)

# Requests carry whole conversations (tool results, pasted files), far beyond the IM's 1 MiB limit.
MAX_BODY_BYTES = 10 * ONE_MIB
OVERHEAD_HEADER = "X-CSGClaw-Overhead-Ms"
TIMEOUT_TEXT = "upstream request timed out"
DISCONNECTED_TEXT = "client disconnected"
FALLBACK_READ_TEXT = "read chat fallback response"
FALLBACK_CONVERT_TEXT = "convert chat fallback response"


# Maps a route's id to (the agent id the call is accounted to, its target). Runs on a bridge database
# thread: one hop per call, so a route that must first resolve its id does both in the same function.
TargetGet = Callable[[str], tuple[str, selectors.LlmTarget]]


def bot_target_get(bot_id: str) -> tuple[str, selectors.LlmTarget]:
    """The bot routes' lookup: the bot id is the agent id."""
    return bot_id, selectors.llm_target_get(bot_id)


async def llm_models(
    request: HttpRequest, bot_id: str, *, target_get: TargetGet = bot_target_get
) -> HttpResponse:
    """The agent's one model (§4); the provider's own `/models` is never asked."""
    started = time.monotonic()
    if request.method != "GET":
        return answered_locally(method_not_allowed(request), started)
    try:
        _, target = await BRIDGE_READ.run(target_get, bot_id)
    except DomainError as exc:
        return answered_locally(response_for_exception(request, exc), started)
    listing = {
        "object": "list",
        "data": [{"id": target.model.model_id, "object": "model", "created": 0, "owned_by": "csgclaw"}],
    }
    return answered_locally(HttpResponse(compact_json(listing), content_type=JSON_TYPE), started)


async def llm_chat_completions(
    request: HttpRequest, bot_id: str, *, target_get: TargetGet = bot_target_get
) -> HttpResponse:
    """Rewrite the request for the agent's model and relay the provider's answer (§5–§7)."""
    started, created_at = time.monotonic(), timezone.now()
    received = await _received_call(request, bot_id, target_get, started)
    if isinstance(received, HttpResponse):
        return received
    agent_id, target, body = received
    payload, streaming = rewrite_completion_request(body, target.model)
    call = _new_call(agent_id, target, CHAT_COMPLETIONS_PATH, streaming, started, created_at)
    exchange = _Exchange(request, call, target)

    async def relay() -> HttpResponse:
        response = await exchange.send(CHAT_COMPLETIONS_PATH, payload)
        if response.status_code >= 400:
            return await exchange.relay_error()
        return exchange.relay_stream(CHAT_FRAMING)

    return await exchange.run(relay)


async def llm_responses(request: HttpRequest, bot_id: str, *, target_get: TargetGet) -> HttpResponse:
    """The Responses API (participants.md §5.5): relayed as is, or through chat completions (§5.6)."""
    started, created_at = time.monotonic(), timezone.now()
    received = await _received_call(request, bot_id, target_get, started)
    if isinstance(received, HttpResponse):
        return received
    agent_id, target, body = received
    payload, streaming = responses.rewrite_responses_request(body, target.model)
    key = responses.provider_key(target.model)
    if key in responses.providers_without_responses_api:
        try:
            fallback = _fallback_payload(body, target.model)
        except ApiError as exc:
            return answered_locally(response_for_exception(request, exc), started)
        call = _new_call(agent_id, target, CHAT_COMPLETIONS_PATH, streaming, started, created_at)
        exchange = _Exchange(request, call, target)
        return await exchange.run(lambda: _chat_fallback(exchange, fallback))
    call = _new_call(agent_id, target, RESPONSES_PATH, streaming, started, created_at)
    exchange = _Exchange(request, call, target)

    async def relay() -> HttpResponse:
        response = await exchange.send(RESPONSES_PATH, payload)
        if response.status_code in responses.NO_RESPONSES_API_STATUSES:
            responses.providers_without_responses_api.add(key)
            await exchange.discard()
            try:
                fallback = _fallback_payload(body, target.model)
            except ApiError as exc:
                raise _Failed(exc.status, LlmOutcome.UPSTREAM_ERROR, exc.message) from None
            call.upstream_url = _logged_url(target.model, CHAT_COMPLETIONS_PATH)
            return await _chat_fallback(exchange, fallback)
        if response.status_code >= 400:
            return await exchange.relay_error()
        return exchange.relay_stream(RESPONSES_FRAMING)

    return await exchange.run(relay)


def _fallback_payload(body: dict[str, Any], model: ResolvedModel) -> bytes:
    """The chat request of a Responses body (§5.6 items 1–4); ApiError 400 when it cannot be converted."""
    return rewrite_completion_request(responses.chat_request_from_responses(body), model)[0]


async def _chat_fallback(exchange: _Exchange, payload: bytes) -> HttpResponse:
    """Ask chat completions and answer the Responses client in its own shape (§5.6 items 4–6)."""
    response = await exchange.send(CHAT_COMPLETIONS_PATH, payload)
    if response.status_code >= 400:
        return await exchange.relay_error()
    if exchange.call.stream:
        converter = responses.ChatStreamConverter(
            model_id=exchange.target.model.model_id, event_limit=MAX_BODY_BYTES
        )
        return exchange.relay_stream(RESPONSES_FRAMING, converter=converter)
    return await exchange.converted_answer()


async def _received_call(
    request: HttpRequest, bot_id: str, target_get: TargetGet, started: float
) -> tuple[str, selectors.LlmTarget, dict[str, Any]] | HttpResponse:
    """The checks every completion route shares (§2): method, size, body, model (before decoding)."""
    if request.method != "POST":
        return answered_locally(method_not_allowed(request), started)
    try:
        raw = _read_request_body(request)
        # Resolved before decoding, so an unknown agent with a bad body is a 404 (§2).
        agent_id, target = await BRIDGE_READ.run(target_get, bot_id)
        body = decode_json_object(raw, keep_nul=True)
    except (ApiError, DomainError) as exc:
        return answered_locally(response_for_exception(request, exc), started)
    return agent_id, target, body


def rewrite_completion_request(body: dict[str, Any], model: ResolvedModel) -> tuple[bytes, bool]:
    """The body sent upstream (compact JSON) and whether the client asked for a stream (§5).

    `model` is always the agent's; the provider's reasoning effort fills a missing or blank one; every
    other field passes through unchanged.
    """
    body["model"] = model.model_id
    requested_effort = body.get("reasoning_effort")
    if model.reasoning_effort and (
        requested_effort is None or (isinstance(requested_effort, str) and not requested_effort.strip())
    ):
        body["reasoning_effort"] = model.reasoning_effort
    streaming = body.get("stream") is True
    if settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE and streaming and body.get("stream_options") is None:
        body["stream_options"] = {"include_usage": True}
    return compact_json(body).encode(), streaming


def _read_request_body(request: HttpRequest) -> bytes:
    # request.read(), not request.body: the 10 MiB limit applies here, not the IM's upload limit.
    try:
        return read_body(request, MAX_BODY_BYTES)
    except OSError:
        raise ApiError(400, "read request body") from None


def _logged_url(model: ResolvedModel, path: str) -> str:
    return provider_url(model, path).split("?", 1)[0]


def _new_call(
    agent_id: str,
    target: selectors.LlmTarget,
    path: str,
    streaming: bool,
    started: float,
    created_at: datetime,
) -> LlmCall:
    return LlmCall(
        agent_id=agent_id,
        model=target.model.model_id,
        provider=target.model.provider_name,
        upstream_url=_logged_url(target.model, path),
        stream=streaming,
        started=started,
        created_at=created_at,
    )


@dataclass(frozen=True)
class _Framing:
    """How one API's answers are read for usage, and how a failure after the status line is told (§6.3)."""

    token_fields: tuple[str, str, str]
    event_stream_tap: Callable[[int], UsageTap]
    error_frame: Callable[[str, int], bytes]


def _chat_error_frame(text: str, code: int) -> bytes:
    error = {"error": {"message": text, "type": "upstream_error", "code": code}}
    return f"data: {compact_json(error)}\n\n".encode()


CHAT_FRAMING = _Framing(CHAT_TOKEN_FIELDS, EventStreamUsageTap, _chat_error_frame)
# Responses clients read `event: error` frames; the code is a string there (§5.5 item 5).
RESPONSES_FRAMING = _Framing(
    RESPONSES_TOKEN_FIELDS, ResponsesEventStreamUsageTap, lambda text, _code: responses.error_frame(text)
)


class _Failed(Exception):
    """The call ends before any response started: the client gets `status` with `text`."""

    def __init__(self, status: int, outcome: str, text: str) -> None:
        super().__init__(text)
        self.status, self.outcome, self.text = status, outcome, text


class _Exchange:
    """One client call's dealings with the provider: one or (fallback) two upstream requests, one row."""

    def __init__(self, request: HttpRequest, call: LlmCall, target: selectors.LlmTarget) -> None:
        self.request = request
        self.call = call
        self.target = target
        # The total deadline counts from the request's arrival, on the clock asyncio's timeouts use.
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() - (time.monotonic() - call.started) + target.request_timeout
        self.response: httpx.Response | None = None

    async def run(self, steps: Callable[[], Awaitable[HttpResponse]]) -> HttpResponse:
        """The client's response of `steps`, with the failures before it and a disconnect accounted for."""
        try:
            try:
                return await steps()
            except _Failed as failure:
                return _failed_before_response(
                    self.request, self.call, failure.status, failure.outcome, failure.text
                )
        except asyncio.CancelledError:
            # The client hung up before our response started: Django cancels the view.
            await self.discard()
            self.call.failed(LlmOutcome.CLIENT_DISCONNECTED, DISCONNECTED_TEXT)
            llm_call_record(self.call)
            raise

    async def send(self, path: str, payload: bytes) -> httpx.Response:
        """Send upstream and wait for the provider's status (§6.2 step 2); the body is not read yet."""
        try:
            upstream_request = provider_request(self.target.model, path, payload, stream=self.call.stream)
            with self.call.waiting_upstream():
                async with asyncio.timeout_at(self.deadline):
                    self.response = await upstream_client().send(upstream_request, stream=True)
        except TimeoutError:
            raise _Failed(504, LlmOutcome.TIMEOUT, TIMEOUT_TEXT) from None
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            text = f"send upstream request: {transport_error_text(exc)}"
            raise _Failed(502, LlmOutcome.TRANSPORT_ERROR, text) from None
        self.call.status_code = self.response.status_code
        return self.response

    async def discard(self) -> None:
        if self.response is not None:
            await self.response.aclose()
            self.response = None

    async def _read_answer(self, limit: int) -> bytes:
        """The whole body of the provider's answer (its first byte is the call's time to first byte)."""
        response = self._response()
        try:
            with self.call.waiting_upstream():
                return await read_whole_body(
                    response,
                    deadline=self.deadline,
                    idle_timeout=self.target.idle_timeout,
                    limit=limit,
                    on_first_chunk=self._first_byte_came,
                )
        finally:
            await self.discard()

    def _first_byte_came(self) -> None:
        self.call.ttfb_ms = self.call.elapsed_ms()

    async def relay_error(self) -> HttpResponse:
        """A provider 4xx/5xx goes back with its status, body and content type (not converted)."""
        response = self._response()
        try:
            body = await self._read_answer(MAX_BODY_BYTES)
        except UpstreamTimeout as exc:
            raise _Failed(504, LlmOutcome.TIMEOUT, str(exc)) from None
        except httpx.RequestError as exc:
            text = f"read upstream response: {transport_error_text(exc)}"
            raise _Failed(502, LlmOutcome.TRANSPORT_ERROR, text) from None
        self.call.failed(
            LlmOutcome.UPSTREAM_ERROR, f"upstream status {response.status_code}: {_excerpt(body)}"
        )
        relayed = HttpResponse(
            body, status=response.status_code, content_type=response.headers.get("content-type") or JSON_TYPE
        )
        return self._answered(relayed)

    async def converted_answer(self) -> HttpResponse:
        """A non-streamed chat answer, converted to the Responses answer (§5.6 item 5)."""
        try:
            raw = await self._read_answer(MAX_BODY_BYTES + 1)
        except UpstreamTimeout as exc:
            raise _Failed(502, LlmOutcome.TIMEOUT, f"{FALLBACK_READ_TEXT}: {exc}") from None
        except httpx.RequestError as exc:
            text = f"{FALLBACK_READ_TEXT}: {transport_error_text(exc)}"
            raise _Failed(502, LlmOutcome.TRANSPORT_ERROR, text) from None
        if len(raw) > MAX_BODY_BYTES:
            text = f"{FALLBACK_READ_TEXT}: body larger than {MAX_BODY_BYTES} bytes"
            raise _Failed(502, LlmOutcome.TRANSPORT_ERROR, text)
        try:
            answer = json.loads(raw)
            self.call.usage = usage_from(answer.get("usage")) if isinstance(answer, dict) else None
            converted = responses.response_from_chat(answer, model_id=self.target.model.model_id)
        except ValueError as exc:
            raise _Failed(502, LlmOutcome.TRANSPORT_ERROR, f"{FALLBACK_CONVERT_TEXT}: {exc}") from None
        return self._answered(HttpResponse(compact_json(converted), content_type=JSON_TYPE))

    def relay_stream(
        self, framing: _Framing, *, converter: responses.ChatStreamConverter | None = None
    ) -> StreamingHttpResponse:
        """The answer as it arrives: the provider's bytes, or with `converter` their Responses events."""
        response = self._response()
        upstream_events = media_type(response) == EVENT_STREAM_TYPE
        event_stream = upstream_events or converter is not None
        if converter is not None:
            # The chat answer is read for its usage; what the client reads is the converter's.
            tap: UsageTap = EventStreamUsageTap(MAX_BODY_BYTES)
            content_type = EVENT_STREAM_TYPE
        else:
            tap = (
                framing.event_stream_tap(MAX_BODY_BYTES)
                if upstream_events
                else JsonUsageTap(MAX_BODY_BYTES, framing.token_fields)
            )
            content_type = response.headers.get("content-type") or JSON_TYPE
        body = _relay_body(
            self.call,
            response,
            tap,
            deadline=self.deadline,
            idle_timeout=self.target.idle_timeout,
            error_frame=framing.error_frame if event_stream else None,
            converter=converter,
        )
        relayed = StreamingHttpResponse(body, status=response.status_code, content_type=content_type)
        if event_stream:
            relayed["Cache-Control"] = "no-cache"
            # Tells nginx-style proxies in front of the server not to hold the events back.
            relayed["X-Accel-Buffering"] = "no"
        _set_overhead(relayed, self.call)
        return relayed

    def _response(self) -> httpx.Response:
        assert self.response is not None, "send() comes first"
        return self.response

    def _answered(self, response: HttpResponse) -> HttpResponse:
        _set_overhead(response, self.call)
        llm_call_record(self.call)
        return response


async def _relay_body(
    call: LlmCall,
    response: httpx.Response,
    tap: UsageTap,
    *,
    deadline: float,
    idle_timeout: float,
    error_frame: Callable[[str, int], bytes] | None,
    converter: responses.ChatStreamConverter | None,
) -> AsyncIterator[bytes]:
    """Every upstream chunk (or its converted frames), yielded the moment it arrives (§6.2, §6.3).

    A copy of each chunk goes to the usage tap.
    """
    chunks = body_chunks(response)
    try:
        while True:
            try:
                chunk = await next_chunk(chunks, deadline=deadline, idle_timeout=idle_timeout)
            except StopAsyncIteration:
                break
            if call.ttfb_ms is None:
                call.ttfb_ms = call.elapsed_ms()
            tap.feed(chunk)
            if converter is None:
                yield chunk
                continue
            for frame in converter.feed(chunk):
                yield frame
            if converter.error is not None:
                break
        if converter is not None:
            for frame in converter.finish():
                yield frame
            if converter.error is not None:
                call.failed(LlmOutcome.UPSTREAM_ERROR, converter.error)
    except UpstreamTimeout as exc:
        call.failed(LlmOutcome.TIMEOUT, str(exc))
        logger.warning("llm call of agent %s: %s", call.agent_id, exc)
        if error_frame is not None:
            yield error_frame(str(exc), 504)
    except httpx.RequestError as exc:
        text = f"read upstream response: {transport_error_text(exc)}"
        call.failed(LlmOutcome.TRANSPORT_ERROR, text)
        logger.warning("llm call of agent %s: %s", call.agent_id, text)
        if error_frame is not None:
            yield error_frame(text, 502)
    except (asyncio.CancelledError, GeneratorExit):
        # SDKs close the connection as soon as they read the answer's end (`data: [DONE]`,
        # `response.completed`), often before the provider's last bytes pass: that client got it all.
        delivered = tap.delivered if converter is None else converter.completed
        if not delivered:
            call.failed(LlmOutcome.CLIENT_DISCONNECTED, DISCONNECTED_TEXT)
        raise
    finally:
        # On a client disconnect this is what stops the provider's generation.
        await response.aclose()
        call.usage = tap.usage()
        llm_call_record(call)


def _failed_before_response(
    request: HttpRequest, call: LlmCall, status: int, outcome: str, text: str
) -> HttpResponse:
    call.failed(outcome, text)
    logger.warning("llm call of agent %s: %s", call.agent_id, text)
    failed = error_response(request, status, text)
    _set_overhead(failed, call)
    llm_call_record(call)
    return failed


def _set_overhead(response: HttpResponse, call: LlmCall) -> None:
    call.overhead_ms = call.own_ms()
    response[OVERHEAD_HEADER] = str(call.overhead_ms)


def answered_locally(response: HttpResponse, started: float) -> HttpResponse:
    """Without an upstream call, the whole handling time is the server's own."""
    response[OVERHEAD_HEADER] = str(round((time.monotonic() - started) * 1000))
    return response


def _excerpt(body: bytes, limit: int = 500) -> str:
    return body[:limit].decode("utf-8", errors="replace")
