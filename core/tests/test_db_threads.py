"""Long-lived database threads (core/db/threads.py): connections kept between calls unless unsafe."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction

from core.db import threads
from core.db.threads import KeptConnectionThreads, run_keeping_connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]


def open_connection() -> sqlite3.Connection:
    """The thread's DB-API connection after a query (the object itself, so that it cannot be recycled)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.connection


def failing_query() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def autocommit_left_off() -> None:
    transaction.set_autocommit(False)


@pytest.fixture
def one_thread() -> Iterator[Callable[..., Any]]:
    """`one_thread(fn)`: fn under run_keeping_connection, always on the same worker thread."""
    executor = ThreadPoolExecutor(max_workers=1)

    def run(fn: Callable[[], Any]) -> Any:
        return executor.submit(run_keeping_connection, fn).result()

    yield run
    executor.submit(lambda: connection.close()).result()
    executor.shutdown()


def test_a_thread_keeps_its_connection_between_calls(one_thread):
    first = one_thread(open_connection)
    second = one_thread(open_connection)

    assert second is first


def test_a_failed_query_drops_the_connection(one_thread):
    first = one_thread(open_connection)
    with pytest.raises(DatabaseError):
        one_thread(failing_query)

    assert one_thread(open_connection) is not first


def test_a_call_that_leaves_autocommit_off_drops_the_connection(one_thread):
    first = one_thread(open_connection)
    one_thread(autocommit_left_off)

    assert one_thread(open_connection) is not first
    assert one_thread(connection.get_autocommit) is True


def test_an_idle_connection_that_is_no_longer_usable_is_replaced(one_thread, monkeypatch):
    first = one_thread(open_connection)
    monkeypatch.setattr(threads, "IDLE_CHECK_SECONDS", 0.0)
    monkeypatch.setattr(type(connections["default"]), "is_usable", lambda self: False)

    assert one_thread(open_connection) is not first


def test_an_idle_connection_that_is_still_usable_is_kept(one_thread, monkeypatch):
    first = one_thread(open_connection)
    monkeypatch.setattr(threads, "IDLE_CHECK_SECONDS", 0.0)

    assert one_thread(open_connection) is first


async def test_calls_run_on_the_named_threads():
    threads = KeptConnectionThreads("test-db-thread", workers=2)

    names = {await threads.run(lambda: threading.current_thread().name) for _ in range(5)}

    assert names and all(name.startswith("test-db-thread") for name in names)
