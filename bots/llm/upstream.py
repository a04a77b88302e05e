"""The LLM bridge's side facing the model provider: shared client, allow-listed request, bounded reads."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from core.config import ResolvedModel

USER_AGENT = "csgclaw-django/0.1.0"
JSON_TYPE = "application/json"
EVENT_STREAM_TYPE = "text/event-stream"

# Reads are unbounded here because the relay bounds them itself (idle and total deadlines, §7); the
# fixed connect bound turns an unreachable provider into a 502 long before the total deadline.
UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=10.0)
# Streams may stay open for minutes, so the number of open connections is not capped (it is bounded by
# the number of agents); idle keep-alive connections are, so a burst does not leave sockets behind.
UPSTREAM_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=32, keepalive_expiry=30.0)

# Django's ASGI handler sends no lifespan events, so a client lives as long as its event loop (Daphne:
# the process). Keyed weakly so that a closed test loop takes its client along.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


class UpstreamTimeout(Exception):
    """The provider exceeded the idle or the total deadline; str() is the text the client sees."""


def upstream_client() -> httpx.AsyncClient:
    """The running event loop's shared provider client, created on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, limits=UPSTREAM_LIMITS)
        _clients[loop] = client
    return client


CHAT_COMPLETIONS_PATH = "/chat/completions"
RESPONSES_PATH = "/responses"


def provider_url(model: ResolvedModel, path: str) -> str:
    """`https://host/v1` + `/responses` → `https://host/v1/responses` (base_url has no trailing `/`)."""
    return f"{model.base_url}{path}"


def provider_request(model: ResolvedModel, path: str, payload: bytes, *, stream: bool) -> httpx.Request:
    """A POST to the provider, carrying exactly the allow-listed headers and nothing of the client's.

    Built as a bare `httpx.Request` because `client.build_request()` would merge the client's default
    headers (`Connection`, httpx's `User-Agent`); httpx adds only `Host` and `Content-Length`.
    """
    if not model.api_key.isascii():
        # httpx would raise UnicodeEncodeError; Go's client (upstream) refuses such a header the same way.
        raise httpx.LocalProtocolError('invalid header field value for "Authorization": not ASCII')
    headers = {
        "Authorization": f"Bearer {model.api_key}",
        "Content-Type": JSON_TYPE,
        "Accept": EVENT_STREAM_TYPE if stream else JSON_TYPE,
        # Raw bytes are relayed, so the provider must not compress them.
        "Accept-Encoding": "identity",
        "User-Agent": USER_AGENT,
    }
    return httpx.Request(
        "POST",
        provider_url(model, path),
        headers=headers,
        content=payload,
        extensions={"timeout": UPSTREAM_TIMEOUT.as_dict()},
    )


def media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives: raw bytes, or decoded ones if the provider compressed despite `identity`."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding and encoding != "identity":
        return response.aiter_bytes()
    return response.aiter_raw()


async def next_chunk(chunks: AsyncIterator[bytes], *, deadline: float, idle_timeout: float) -> bytes:
    """The next body chunk, waiting no longer than the idle timeout nor past the total deadline.

    `deadline` is on the event loop's clock. Raises StopAsyncIteration at the end of the body and
    UpstreamTimeout when a bound is hit.
    """
    loop = asyncio.get_running_loop()
    idle_ends = loop.time() + idle_timeout
    try:
        async with asyncio.timeout_at(min(deadline, idle_ends)):
            return await anext(chunks)
    except TimeoutError:
        if idle_ends < deadline:
            raise UpstreamTimeout(f"upstream stream idle for {idle_timeout:g}s") from None
        raise UpstreamTimeout("upstream request timed out") from None


async def read_whole_body(
    response: httpx.Response,
    *,
    deadline: float,
    idle_timeout: float,
    limit: int,
    on_first_chunk: Callable[[], None] | None = None,
) -> bytes:
    """A provider body read to its end or cut at `limit` bytes: an error to relay, an answer to convert."""
    chunks = body_chunks(response)
    body = bytearray()
    while len(body) < limit:
        try:
            chunk = await next_chunk(chunks, deadline=deadline, idle_timeout=idle_timeout)
        except StopAsyncIteration:
            break
        if on_first_chunk is not None and not body:
            on_first_chunk()
        body += chunk
    return bytes(body[:limit])


def transport_error_text(exc: Exception) -> str:
    """httpx errors such as `ReadError()` can have an empty message; the class name still says something."""
    return str(exc) or type(exc).__name__


def compact_json(value: Any) -> str:
    """The form of every JSON body the bridge writes itself (key order and number format may change)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
