"""The bot LLM bridge (llm-bridge.md): OpenAI-compatible routes per agent, relayed with true streaming.

The box calls these routes with the server token; the server picks the agent's model from the current
config.toml, swaps in the provider's key and relays the provider's answer byte for byte as it arrives.
Plain Django async views (not DRF), dispatched by bots/bridge/dispatch.py after the path and bearer checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from bots import selectors
from bots.llm.upstream import (
    EVENT_STREAM_TYPE,
    JSON_TYPE,
    UpstreamTimeout,
    body_chunks,
    completions_request,
    completions_url,
    media_type,
    next_chunk,
    read_error_body,
    transport_error_text,
    upstream_client,
)
from bots.llm.usage import EventStreamUsageTap, JsonUsageTap, LlmCall, UsageTap, llm_call_record
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
    return answered_locally(HttpResponse(_compact_json(listing), content_type=JSON_TYPE), started)


async def llm_chat_completions(
    request: HttpRequest, bot_id: str, *, target_get: TargetGet = bot_target_get
) -> HttpResponse:
    """Rewrite the request for the agent's model and relay the provider's answer (§5–§7)."""
    started = time.monotonic()
    created_at = timezone.now()
    if request.method != "POST":
        return answered_locally(method_not_allowed(request), started)
    try:
        raw = _read_request_body(request)
        # Resolved before decoding, so an unknown agent with a bad body is a 404 (§2).
        agent_id, target = await BRIDGE_READ.run(target_get, bot_id)
        body = decode_json_object(raw, keep_nul=True)
    except (ApiError, DomainError) as exc:
        return answered_locally(response_for_exception(request, exc), started)
    payload, streaming = rewrite_completion_request(
        body, target.model, include_stream_usage=settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE
    )
    call = LlmCall(
        agent_id=agent_id,
        model=target.model.model_id,
        provider=target.model.provider_name,
        upstream_url=completions_url(target.model).split("?", 1)[0],
        stream=streaming,
        started=started,
        created_at=created_at,
    )
    return await _relay(request, call, target, payload)


def rewrite_completion_request(
    body: dict[str, Any], model: ResolvedModel, *, include_stream_usage: bool
) -> tuple[bytes, bool]:
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
    if include_stream_usage and streaming and body.get("stream_options") is None:
        body["stream_options"] = {"include_usage": True}
    return _compact_json(body).encode(), streaming


def _read_request_body(request: HttpRequest) -> bytes:
    # request.read(), not request.body: the 10 MiB limit applies here, not the IM's upload limit.
    try:
        return read_body(request, MAX_BODY_BYTES)
    except OSError:
        raise ApiError(400, "read request body") from None


async def _relay(
    request: HttpRequest, call: LlmCall, target: selectors.LlmTarget, payload: bytes
) -> HttpResponse:
    """Send upstream and choose the response type only once the provider's status is known (§6.2)."""
    loop = asyncio.get_running_loop()
    # The total deadline counts from the request's arrival, on the clock asyncio's timeouts use.
    deadline = loop.time() - (time.monotonic() - call.started) + target.request_timeout
    response: httpx.Response | None = None
    try:
        try:
            upstream_request = completions_request(target.model, payload, stream=call.stream)
            with call.waiting_upstream():
                async with asyncio.timeout_at(deadline):
                    response = await upstream_client().send(upstream_request, stream=True)
        except TimeoutError:
            return _failed_before_response(request, call, 504, LlmOutcome.TIMEOUT, TIMEOUT_TEXT)
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            text = f"send upstream request: {transport_error_text(exc)}"
            return _failed_before_response(request, call, 502, LlmOutcome.TRANSPORT_ERROR, text)
        call.status_code = response.status_code
        if response.status_code >= 400:
            return await _relay_error(
                request, call, response, deadline=deadline, idle_timeout=target.idle_timeout
            )
        return _relay_stream(call, response, deadline=deadline, idle_timeout=target.idle_timeout)
    except asyncio.CancelledError:
        # The client hung up before our response started: Django cancels the view.
        if response is not None:
            await response.aclose()
        call.failed(LlmOutcome.CLIENT_DISCONNECTED, DISCONNECTED_TEXT)
        llm_call_record(call)
        raise


async def _relay_error(
    request: HttpRequest, call: LlmCall, response: httpx.Response, *, deadline: float, idle_timeout: float
) -> HttpResponse:
    """A provider 4xx/5xx goes back with its status, body and content type (not converted)."""
    try:
        with call.waiting_upstream():
            body = await read_error_body(
                response, deadline=deadline, idle_timeout=idle_timeout, limit=MAX_BODY_BYTES
            )
    except UpstreamTimeout as exc:
        return _failed_before_response(request, call, 504, LlmOutcome.TIMEOUT, str(exc))
    except httpx.RequestError as exc:
        text = f"read upstream response: {transport_error_text(exc)}"
        return _failed_before_response(request, call, 502, LlmOutcome.TRANSPORT_ERROR, text)
    finally:
        await response.aclose()
    call.failed(LlmOutcome.UPSTREAM_ERROR, f"upstream status {response.status_code}: {_excerpt(body)}")
    relayed = HttpResponse(
        body, status=response.status_code, content_type=response.headers.get("content-type") or JSON_TYPE
    )
    _set_overhead(relayed, call)
    llm_call_record(call)
    return relayed


def _relay_stream(
    call: LlmCall, response: httpx.Response, *, deadline: float, idle_timeout: float
) -> StreamingHttpResponse:
    event_stream = media_type(response) == EVENT_STREAM_TYPE
    tap: UsageTap = EventStreamUsageTap(MAX_BODY_BYTES) if event_stream else JsonUsageTap(MAX_BODY_BYTES)
    relayed = StreamingHttpResponse(
        _relay_body(
            call, response, tap, deadline=deadline, idle_timeout=idle_timeout, event_stream=event_stream
        ),
        status=response.status_code,
        content_type=response.headers.get("content-type") or JSON_TYPE,
    )
    if event_stream:
        relayed["Cache-Control"] = "no-cache"
        # Tells nginx-style proxies in front of the server not to hold the events back.
        relayed["X-Accel-Buffering"] = "no"
    _set_overhead(relayed, call)
    return relayed


async def _relay_body(
    call: LlmCall,
    response: httpx.Response,
    tap: UsageTap,
    *,
    deadline: float,
    idle_timeout: float,
    event_stream: bool,
) -> AsyncIterator[bytes]:
    """Every upstream chunk, yielded the moment it arrives; a copy goes to the usage tap (§6.2, §6.3)."""
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
            yield chunk
    except UpstreamTimeout as exc:
        call.failed(LlmOutcome.TIMEOUT, str(exc))
        logger.warning("llm call of agent %s: %s", call.agent_id, exc)
        if event_stream:
            yield _error_event(str(exc), 504)
    except httpx.RequestError as exc:
        text = f"read upstream response: {transport_error_text(exc)}"
        call.failed(LlmOutcome.TRANSPORT_ERROR, text)
        logger.warning("llm call of agent %s: %s", call.agent_id, text)
        if event_stream:
            yield _error_event(text, 502)
    except (asyncio.CancelledError, GeneratorExit):
        # SDKs close the connection as soon as they read `data: [DONE]`, often before the provider's
        # last bytes (the chunked terminator) pass: that client got the whole answer.
        if not tap.delivered:
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


def _error_event(text: str, code: int) -> bytes:
    """The frame that tells an SSE client the stream failed after its status line was sent (§6.3)."""
    error = {"error": {"message": text, "type": "upstream_error", "code": code}}
    return f"data: {_compact_json(error)}\n\n".encode()


def _set_overhead(response: HttpResponse, call: LlmCall) -> None:
    call.overhead_ms = call.own_ms()
    response[OVERHEAD_HEADER] = str(call.overhead_ms)


def answered_locally(response: HttpResponse, started: float) -> HttpResponse:
    """Without an upstream call, the whole handling time is the server's own."""
    response[OVERHEAD_HEADER] = str(round((time.monotonic() - started) * 1000))
    return response


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _excerpt(body: bytes, limit: int = 500) -> str:
    return body[:limit].decode("utf-8", errors="replace")
