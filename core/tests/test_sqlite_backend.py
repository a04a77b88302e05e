"""The embedded SQLite backend (core/db/sqlite/base.py): private file, kept WAL, writers queued."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import OperationalError

from core.db.sqlite.base import DatabaseWrapper

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def open_database(tmp_path, django_db_blocker) -> Iterator[Callable[[], DatabaseWrapper]]:
    """`open_database()`: a new connection (as a request thread has) to one database file in tmp_path.

    A file of its own, not the test database: these tests need no tables of the project's."""
    settings_dict = {**connections["default"].settings_dict, "NAME": str(tmp_path / "csgclaw.sqlite3")}
    settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], "timeout": 2}
    opened: list[DatabaseWrapper] = []

    def open_one() -> DatabaseWrapper:
        database = DatabaseWrapper(settings_dict, alias=f"probe-{len(opened)}")
        opened.append(database)
        return database

    with django_db_blocker.unblock():
        yield open_one
        for database in opened:
            # Those opened by a test's own thread were closed there (a connection belongs to its thread).
            if database.connection is not None:
                database.close()


def execute(database: DatabaseWrapper, sql: str) -> None:
    with database.cursor() as cursor:
        cursor.execute(sql)


def test_the_database_file_is_readable_by_its_owner_only(open_database):
    database = open_database()
    execute(database, "CREATE TABLE note (text TEXT)")

    mode = Path(database.settings_dict["NAME"]).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_the_wal_outlives_the_last_request_connection(open_database):
    # Otherwise every request's close checkpoints the log into the database and deletes it.
    database = open_database()
    execute(database, "CREATE TABLE note (text TEXT)")
    execute(database, "INSERT INTO note VALUES ('kept')")
    database.close()

    assert Path(database.settings_dict["NAME"] + "-wal").exists()
    reader = open_database()
    with reader.cursor() as cursor:
        cursor.execute("SELECT text FROM note")
        assert cursor.fetchall() == [("kept",)]


def test_a_writer_waits_in_the_process_until_the_previous_one_commits(open_database):
    first = open_database()
    execute(first, "CREATE TABLE note (text TEXT)")
    first._start_transaction_under_autocommit()
    execute(first, "INSERT INTO note VALUES ('first')")
    second_began = threading.Event()

    def write_second() -> None:
        # A connection belongs to the thread that opened it, as a request's does.
        second = open_database()
        second.ensure_connection()
        second._start_transaction_under_autocommit()
        second_began.set()
        execute(second, "INSERT INTO note VALUES ('second')")
        second._commit()
        second.close()

    writer = threading.Thread(target=write_second)
    writer.start()
    assert not second_began.wait(0.3)
    first._commit()
    writer.join(5)

    assert second_began.is_set()
    with first.cursor() as cursor:
        cursor.execute("SELECT text FROM note ORDER BY rowid")
        assert cursor.fetchall() == [("first",), ("second",)]


def test_a_writer_that_cannot_get_its_turn_gets_database_is_locked(open_database):
    first = open_database()
    execute(first, "CREATE TABLE note (text TEXT)")
    first._start_transaction_under_autocommit()
    outcomes: list[str] = []

    def write_second() -> None:
        second = open_database()
        second.ensure_connection()
        try:
            second._start_transaction_under_autocommit()
        except OperationalError as exc:
            outcomes.append(str(exc))
        outcomes.append(f"holds the turn: {second.holds_writer_lock}")
        second.close()

    writer = threading.Thread(target=write_second)
    writer.start()
    writer.join(5)
    first._rollback()

    assert outcomes == ["database is locked", "holds the turn: False"]
    # The turn was handed back: the next writer starts at once.
    first._start_transaction_under_autocommit()
    first._rollback()


def test_closing_in_a_transaction_hands_the_turn_on(open_database):
    first, second = open_database(), open_database()
    execute(first, "CREATE TABLE note (text TEXT)")
    second.ensure_connection()
    first._start_transaction_under_autocommit()

    first.close()

    second._start_transaction_under_autocommit()
    assert second.holds_writer_lock
    second._rollback()
