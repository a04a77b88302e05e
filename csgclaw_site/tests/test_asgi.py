"""The ASGI entry point's handler: request threads are reused, never shared, and left without connections."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from channels.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.db import connection

from core.db.threads import RequestThreads
from csgclaw_site.asgi import ReusedThreadASGIHandler
from csgclaw_site.tests.asgi_scope import http_scope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]

# A sync DRF view that reads the database on the request's thread.
ORM_PATH = "/api/v1/users"


@dataclass(frozen=True)
class FinishedOn:
    # The Thread object, not its ident: a finished thread's ident can be given to the next new thread.
    thread: threading.Thread
    connection_open: bool


@pytest.fixture
def finished_on() -> Iterator[list[FinishedOn]]:
    """Where each request's request_finished ran, seen after Django's receivers (close_old_connections)."""
    seen: list[FinishedOn] = []

    def record(**kwargs: object) -> None:
        seen.append(FinishedOn(threading.current_thread(), connection.connection is not None))

    request_finished.connect(record)
    yield seen
    request_finished.disconnect(record)


def communicator(handler: ReusedThreadASGIHandler, path: str) -> ApplicationCommunicator:
    scope = http_scope("GET", path)
    return ApplicationCommunicator(handler, scope)


async def finish(request: ApplicationCommunicator) -> int:
    """Send the (empty) body, read the whole response, wait for the handler to return; the status."""
    await request.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await request.receive_output(5)
    more = True
    while more:
        more = (await request.receive_output(5)).get("more_body", False)
    await request.wait(5)
    return start["status"]


async def test_consecutive_requests_reuse_one_thread_and_close_its_connection(finished_on):
    handler = ReusedThreadASGIHandler()

    for _ in range(3):
        assert await finish(communicator(handler, ORM_PATH)) == 200

    assert len({seen.thread for seen in finished_on}) == 1
    assert not any(seen.connection_open for seen in finished_on)


async def test_concurrent_requests_never_share_a_thread(finished_on):
    handler = ReusedThreadASGIHandler()
    # Both requests have taken their executor before either sends its body.
    first, second = communicator(handler, ORM_PATH), communicator(handler, ORM_PATH)
    await first.send_input({"type": "http.request", "body": b"", "more_body": True})
    await second.send_input({"type": "http.request", "body": b"", "more_body": True})

    assert await finish(second) == 200
    assert await finish(first) == 200
    assert await finish(communicator(handler, ORM_PATH)) == 200

    first_thread, second_thread, third_thread = (seen.thread for seen in finished_on)
    assert first_thread != second_thread
    assert third_thread in (first_thread, second_thread)


async def test_executors_beyond_the_idle_limit_are_shut_down(finished_on):
    threads = RequestThreads(max_idle=1)
    handler = ReusedThreadASGIHandler(threads)
    requests = [communicator(handler, ORM_PATH) for _ in range(3)]
    for request in requests:
        await request.send_input({"type": "http.request", "body": b"", "more_body": True})

    for request in requests:
        assert await finish(request) == 200

    assert len({seen.thread for seen in finished_on}) == 3
    assert len(threads._idle) == 1
