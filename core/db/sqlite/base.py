"""The embedded SQLite backend: writers queued in the process, a kept-open WAL, and a private file.

Writers take SQLite's lock at BEGIN IMMEDIATE (so commit order equals event seq order). When several
threads of one server write at once, SQLite makes the losers sleep and retry with growing pauses (up to
100 ms each), so a few unlucky requests wait for seconds while the lock sits free. A process-wide lock
taken just before BEGIN hands the database to the next writer the moment the previous one commits.
Other processes (a second server, `manage.py onboard`) still meet SQLite's own locking and timeout.

Requests open and close their connection; when the last one closes, SQLite checkpoints and deletes the
WAL file and the next commit recreates it. One idle connection kept for the process avoids that churn.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

_writer_lock = threading.Lock()
_wal_keepers: dict[str, sqlite3.Connection] = {}
_wal_keepers_lock = threading.Lock()


def _keep_wal_open(path: str) -> None:
    with _wal_keepers_lock:
        if path not in _wal_keepers:
            keeper = sqlite3.connect(path, check_same_thread=False)
            # SQLite opens the file (and attaches to the WAL) at the first read, not at connect: a keeper
            # that never read would not count, and every request's close would checkpoint and delete the
            # WAL (about 1.3 ms per request on this project's 2-core box).
            keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()
            _wal_keepers[path] = keeper


class DatabaseWrapper(base.DatabaseWrapper):
    holds_writer_lock = False

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            path = str(self.settings_dict["NAME"])
            # The database holds every message: readable by its owner only.
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
            _keep_wal_open(path)
        return connection

    def _start_transaction_under_autocommit(self) -> None:
        timeout = self.settings_dict.get("OPTIONS", {}).get("timeout", 5)
        if not _writer_lock.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        self.holds_writer_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        if self.holds_writer_lock:
            self.holds_writer_lock = False
            _writer_lock.release()
