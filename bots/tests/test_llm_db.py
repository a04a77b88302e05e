"""The bot bridge's database threads (bots/llm/db.py): named threads, one kept connection each."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bots.llm.db import bridge_read, bridge_write
from core.tests.test_db_threads import open_connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(20)]


async def test_reads_and_writes_run_on_the_bridge_threads_with_kept_connections():
    async def thread_and_connection(run: Callable[..., Any]) -> tuple[str, sqlite3.Connection]:
        return await run(lambda: (threading.current_thread().name, open_connection()))

    reads = [await thread_and_connection(bridge_read) for _ in range(3)]
    writes = [await thread_and_connection(bridge_write) for _ in range(3)]

    assert all(name.startswith("bridge-db-read") for name, _ in reads)
    assert all(name.startswith("bridge-db-write") for name, _ in writes)
    # Each thread reports one connection, however often it ran.
    for calls in (reads, writes):
        per_thread: dict[str, set[int]] = {}
        for name, raw in calls:
            per_thread.setdefault(name, set()).add(id(raw))
        assert all(len(ids) == 1 for ids in per_thread.values())
