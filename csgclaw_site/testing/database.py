"""The test database: a file-backed SQLite database instead of Django's in-memory one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A file-backed SQLite test database, so tests run with the WAL concurrency production relies on.

    Django's default in-memory test database shares one cache between threads, where a reader meets
    "database table is locked" while another thread writes: streams and writers could not overlap.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] in ("django.db.backends.sqlite3", "core.db.sqlite"):
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("test-database") / "test.sqlite3")
