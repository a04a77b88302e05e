"""Oversized request bodies on a live Daphne (security.md S6): refused before they are read.

Memory is the peak resident set of the server process during the upload (/proc/<pid>/status).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from core.http import LLM_BODY_LIMIT, ONE_MIB
from csgclaw_site.tests.proc_memory import PeakRss

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

MIB = ONE_MIB
ANNOUNCED_BYTES = 300 * MIB
MAX_GROWTH_BYTES = 50 * MIB
ZEROS = bytes(MIB)
TOO_LARGE = "request body too large\n"


def zeros(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = ZEROS[: min(MIB, total - sent)]
        sent += len(chunk)
        yield chunk


def post(server, path: str, total: int, *, announce: bool, headers: dict[str, str] | None = None):
    headers = dict(headers or {})
    if announce:
        headers["Content-Length"] = str(total)
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60.0) as client:
        return client.post(path, content=zeros(total), headers=headers)


def test_a_300_mb_body_with_its_length_announced_is_413_and_the_server_stays_small(daphne_server) -> None:
    pid = daphne_server.process.pid
    # Warm the process up first: the first request of a fresh server imports and allocates on its own.
    httpx.get(f"{daphne_server.base_url}/api/v1/rooms", trust_env=False)
    started = time.monotonic()

    with PeakRss(pid) as rss:
        response = post(daphne_server, "/api/v1/messages", ANNOUNCED_BYTES, announce=True)

    assert (response.status_code, response.text) == (413, TOO_LARGE)
    assert rss.growth < MAX_GROWTH_BYTES, f"server grew {rss.growth / MIB:.0f} MiB"
    # Nothing near 300 MB was read: on loopback that alone takes seconds.
    assert time.monotonic() - started < 10


def test_the_refusal_comes_before_100_continue_so_the_body_is_never_sent(daphne_server) -> None:
    with socket.create_connection(("127.0.0.1", daphne_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {ANNOUNCED_BYTES}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer
    assert body == b'{"error": {"status": 413, "message": "request body too large"}}'


def test_a_chunked_body_is_refused_once_it_passes_the_limit(daphne_server) -> None:
    httpx.get(f"{daphne_server.base_url}/api/v1/rooms", trust_env=False)

    with PeakRss(daphne_server.process.pid) as rss:
        response = post(daphne_server, "/api/v1/rooms", 64 * MIB, announce=False)

    assert (response.status_code, response.text) == (413, TOO_LARGE)
    assert rss.growth < MAX_GROWTH_BYTES, f"server grew {rss.growth / MIB:.0f} MiB"


def test_a_chunked_body_under_the_limit_reaches_the_route(daphne_server) -> None:
    response = post(daphne_server, "/api/v1/messages", MIB // 2, announce=False)

    # Half a MiB of zero bytes is no JSON: the route itself answers.
    assert response.status_code == 400
    assert response.text.startswith("decode request:")


def test_llm_routes_take_ten_mib_and_refuse_one_byte_more(daphne_server) -> None:
    path = "/api/bots/u-ghost/llm/chat/completions"

    accepted = post(daphne_server, path, 2 * MIB, announce=True)
    refused = post(daphne_server, path, LLM_BODY_LIMIT + 1, announce=True)
    refused_chunked = post(daphne_server, path, LLM_BODY_LIMIT + 1, announce=False)

    # A bot with no token: the route ran, so the size was accepted.
    assert accepted.status_code == 401
    assert (refused.status_code, refused.text) == (413, TOO_LARGE)
    assert (refused_chunked.status_code, refused_chunked.text) == (413, TOO_LARGE)


def test_the_server_keeps_serving_after_refusals(daphne_server) -> None:
    for _ in range(3):
        assert post(daphne_server, "/api/v1/rooms", 2 * MIB, announce=True).status_code == 413

    assert httpx.get(f"{daphne_server.base_url}/healthz", trust_env=False).text == "ok"
