"""agents/jobs.py: daemon pools run jobs now or once their delay has passed, and report through futures."""

from __future__ import annotations

import threading
import time

import pytest

from agents import jobs
from agents.jobs import DaemonPool

pytestmark = pytest.mark.timeout(10)


def test_a_job_answers_through_its_future_on_a_daemon_thread():
    pool = DaemonPool("test-now", lambda: 2)

    thread = pool.submit(threading.current_thread).result(timeout=5)

    assert thread.daemon
    assert thread.name.startswith("test-now-")


def test_a_failing_job_hands_its_error_to_the_future():
    pool = DaemonPool("test-error", lambda: 1)

    def fail() -> None:
        raise RuntimeError("box store is down")

    with pytest.raises(RuntimeError, match="box store is down"):
        pool.submit(fail).result(timeout=5)


def test_a_worker_survives_when_closing_the_jobs_connections_fails(monkeypatch, caplog):
    pool = DaemonPool("test-cleanup", lambda: 1)
    closes = iter([RuntimeError("database is unreachable")])

    def close_old_connections() -> None:
        failure = next(closes, None)
        if failure is not None:
            raise failure

    monkeypatch.setattr(jobs, "close_old_connections", close_old_connections)

    assert pool.submit(lambda: "first").result(timeout=5) == "first"
    assert pool.submit(lambda: "second").result(timeout=5) == "second"
    assert "close the database connections of a background job" in caplog.text


def test_delayed_jobs_run_in_the_order_they_fall_due_and_never_early():
    pool = DaemonPool("test-later", lambda: 1)
    ran: list[tuple[str, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def job(name: str, last: bool = False):
        def run() -> None:
            ran.append((name, time.monotonic() - started))
            if last:
                done.set()

        return run

    pool.submit_later(0.3, job("late", last=True))
    pool.submit_later(0.1, job("early"))

    assert done.wait(timeout=5)
    assert [name for name, _ in ran] == ["early", "late"]
    assert ran[0][1] >= 0.1
    assert ran[1][1] >= 0.3
