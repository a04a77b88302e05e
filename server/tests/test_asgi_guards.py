"""The ASGI body limit (security.md S6) for servers that stream bodies to the app, and the route limits."""

from __future__ import annotations

import pytest
from channels.testing import ApplicationCommunicator

from core.http import DEFAULT_BODY_LIMIT, LLM_BODY_LIMIT, MULTIPART_MESSAGE_BODY_LIMIT, body_limit
from csgclaw_site.tests.asgi_scope import http_scope
from server.asgi_guards import BodyLimitMiddleware
from server.daphne_guards import request_target_path

pytestmark = pytest.mark.timeout(10)

TOO_LARGE = b"request body too large\n"


class ReadingApp:
    """Reads the body as Django's read_body does, then answers 200 with the byte count."""

    def __init__(self) -> None:
        self.received = 0
        self.saw_disconnect = False

    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.saw_disconnect = True
                return
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.received).encode()})


async def answer(communicator: ApplicationCommunicator) -> tuple[int, bytes]:
    start = await communicator.receive_output(2)
    body = await communicator.receive_output(2)
    return start["status"], body["body"]


async def test_an_announced_length_over_the_limit_is_answered_without_reading() -> None:
    app = ReadingApp()
    scope = http_scope("POST", "/api/v1/rooms", headers={"Content-Length": str(DEFAULT_BODY_LIMIT + 1)})
    communicator = ApplicationCommunicator(BodyLimitMiddleware(app), scope)

    # No body is sent at all: a server that streams would never have to read it.
    assert await answer(communicator) == (413, TOO_LARGE)
    assert app.received == 0
    await communicator.wait(1)


async def test_a_body_without_length_is_cut_off_once_past_the_limit() -> None:
    app = ReadingApp()
    communicator = ApplicationCommunicator(BodyLimitMiddleware(app), http_scope("POST", "/api/v1/rooms"))
    chunk = b"x" * (256 * 1024)
    for _ in range(5):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})

    assert await answer(communicator) == (413, TOO_LARGE)
    assert app.saw_disconnect
    assert app.received <= DEFAULT_BODY_LIMIT
    await communicator.wait(1)


async def test_json_clients_get_the_json_error() -> None:
    scope = http_scope(
        "POST", "/api/v1/rooms", headers={"Content-Length": "2000000", "Accept": "application/json"}
    )
    communicator = ApplicationCommunicator(BodyLimitMiddleware(ReadingApp()), scope)

    status, body = await answer(communicator)

    assert (status, body) == (413, b'{"error": {"status": 413, "message": "request body too large"}}')


async def test_a_body_at_the_limit_reaches_the_application() -> None:
    scope = http_scope("POST", "/api/v1/agents/u-x/llm/chat/completions")
    communicator = ApplicationCommunicator(BodyLimitMiddleware(ReadingApp()), scope)
    await communicator.send_input({"type": "http.request", "body": b"x" * LLM_BODY_LIMIT})

    assert await answer(communicator) == (200, str(LLM_BODY_LIMIT).encode())


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/bots/u-dev/llm/chat/completions", LLM_BODY_LIMIT),
        ("/api/bots/u-dev/llm/v1/chat/completions", LLM_BODY_LIMIT),
        ("/api/v1/agents/u-dev/llm", LLM_BODY_LIMIT),
        ("/api/v1/agents/u-dev/llm/v1/responses", LLM_BODY_LIMIT),
        ("/api/bots/u-dev/messages/send", MULTIPART_MESSAGE_BODY_LIMIT),
        ("/api/bots/u-dev/messages/send/x", DEFAULT_BODY_LIMIT),
        ("/api/bots/u-dev/events", DEFAULT_BODY_LIMIT),
        ("/api/v1/agents", DEFAULT_BODY_LIMIT),
        ("/api/v1/agents/llm", DEFAULT_BODY_LIMIT),
        ("/api/v1/messages", MULTIPART_MESSAGE_BODY_LIMIT),
        ("/api/v1/im/messages", MULTIPART_MESSAGE_BODY_LIMIT),
        ("/api/v1/channels/csgclaw/participants/pt-dev/messages", MULTIPART_MESSAGE_BODY_LIMIT),
        ("/api/v1/channels/feishu/participants/pt-dev/messages", DEFAULT_BODY_LIMIT),
        ("/api/v1/channels/csgclaw/participants/pt-dev/events", DEFAULT_BODY_LIMIT),
        ("/api/v1/rooms/room-1/messages", DEFAULT_BODY_LIMIT),
        ("/admin/login/", DEFAULT_BODY_LIMIT),
    ],
)
def test_route_limits(path: str, limit: int) -> None:
    assert body_limit(path) == limit


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/api/bots/u-dev/llm/chat/completions?x=1", "/api/bots/u-dev/llm/chat/completions"),
        (b"/api/v1/agents/u%2Ddev/llm", "/api/v1/agents/u-dev/llm"),
        (b"http://127.0.0.1:18080/api/v1/agents/u-dev/llm?y", "/api/v1/agents/u-dev/llm"),
    ],
)
def test_request_targets_are_decoded_like_daphnes_scope_path(target: bytes, path: str) -> None:
    assert request_target_path(target) == path
