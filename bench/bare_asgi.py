"""Lower bounds for bench/llm_proxy.py: what Daphne and httpx cost on this machine without Django.

`daphne bench.bare_asgi:application` with `BENCH_UPSTREAM_BASE_URL` set answers `GET /healthz` with a
fixed body and relays every POST to `<upstream>/chat/completions` the way the bridge does at the least:
one shared `httpx.AsyncClient` with the bridge's own timeout and limits, the answer streamed back chunk
by chunk. No authentication, model resolution, rewrite, usage accounting or database.
"""

from __future__ import annotations

import os

import httpx

from bots.llm.upstream import UPSTREAM_LIMITS, UPSTREAM_TIMEOUT

_client: httpx.AsyncClient | None = None


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    if scope["method"] == "GET":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await _relay(body, send)


async def _read_body(receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def _relay(body: bytes, send) -> None:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, limits=UPSTREAM_LIMITS)
    request = httpx.Request(
        "POST",
        os.environ["BENCH_UPSTREAM_BASE_URL"] + "/chat/completions",
        headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
        content=body,
    )
    response = await _client.send(request, stream=True)
    try:
        content_type = response.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await response.aclose()
    await send({"type": "http.response.body", "body": b""})
