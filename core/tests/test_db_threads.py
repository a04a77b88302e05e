"""core/db/threads.py: named pools with kept connections, request threads, and no other way off the loop."""

from __future__ import annotations

import ast
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction

from core.db import threads
from core.db.threads import REQUEST_THREAD, DbThreads, RequestThreads, run_keeping_connection

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
    pool = DbThreads("test-db-thread", workers=2)

    names = {await pool.run(lambda: threading.current_thread().name) for _ in range(5)}

    assert names and all(name.startswith("test-db-thread") for name in names)


POOLS = [value for value in vars(threads).values() if isinstance(value, DbThreads)]


def test_the_pools_are_declared_once_each():
    names = [pool.name for pool in POOLS]

    assert len(names) == len(set(names)) >= 6


@pytest.mark.parametrize("pool", POOLS, ids=[pool.name for pool in POOLS])
async def test_every_pool_runs_on_its_named_threads_with_one_kept_connection_each(pool):
    calls = [await pool.run(lambda: (threading.current_thread().name, open_connection())) for _ in range(3)]

    assert all(name.startswith(pool.name) for name, _ in calls)
    per_thread: dict[str, set[int]] = {}
    for name, raw in calls:
        per_thread.setdefault(name, set()).add(id(raw))
    assert all(len(ids) == 1 for ids in per_thread.values())


async def test_a_lent_request_thread_runs_all_of_its_requests_work_and_no_other_requests():
    request_threads = RequestThreads(max_idle=2)
    current = threading.current_thread

    async with request_threads.lent():
        first = {await request_threads.run(current) for _ in range(3)}
        async with request_threads.lent():
            nested = await request_threads.run(current)

    assert len(first) == 1 and current() not in first
    assert nested not in first


async def test_outside_a_request_the_request_thread_is_asgirefs_one_thread():
    assert await REQUEST_THREAD.run(threading.current_thread) is not threading.current_thread()


# --- nothing else takes database work off the event loop ----------------------------------------------

REPO = Path(__file__).resolve().parents[2]
# Each is another way to run sync code off the event loop, past the pools and their kept connections.
OFF_LOOP_NAMES = frozenset(
    {
        "sync_to_async",
        "SyncToAsync",
        "database_sync_to_async",
        "ThreadPoolExecutor",
        "run_in_executor",
        "to_thread",
    }
)
# The box runtime imports no Django and has no database: its threads are none of this module's business.
NOT_SERVER_CODE = ("agent_runtime",)


def off_loop_names(source: str) -> set[str]:
    """The names of OFF_LOOP_NAMES that `source` imports, calls or reads (comments and strings aside)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.alias):
            found.add(node.asname or node.name.rsplit(".", 1)[-1])
            found.add(node.name.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found & OFF_LOOP_NAMES


def server_modules() -> Iterator[Path]:
    for package in sorted(path.parent for path in REPO.glob("*/__init__.py")):
        if package.name in NOT_SERVER_CODE:
            continue
        for module in package.rglob("*.py"):
            relative = module.relative_to(REPO)
            if "tests" in relative.parts or relative.parts[:2] == ("core", "db"):
                continue
            yield module


def test_no_module_outside_core_db_runs_sync_code_off_the_loop_by_other_means():
    offenders = {
        str(module.relative_to(REPO)): sorted(names)
        for module in server_modules()
        if (names := off_loop_names(module.read_text()))
    }

    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "from asgiref.sync import sync_to_async",
        "import asgiref.sync\nasgiref.sync.sync_to_async(f)",
        "from concurrent import futures\npool = futures.ThreadPoolExecutor(2)",
        "await asyncio.to_thread(f)",
        "await loop.run_in_executor(None, f)",
    ],
)
def test_the_scan_sees_each_other_way(source):
    assert off_loop_names(source)


def test_the_scan_ignores_comments_and_strings():
    assert not off_loop_names('# not sync_to_async\n"""nor ThreadPoolExecutor"""')
