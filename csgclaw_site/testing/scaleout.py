"""PostgreSQL and Redis on loopback for the scale-out tests: a throw-away database per test, Redis as found.

Both skip the test, saying why, when the service is not reachable (README "Scaling out").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_USERS = ("postgres", "root")
REDIS_URL = "redis://127.0.0.1:6379/0"


def _postgres_admin():
    """An autocommit connection to the `postgres` database as the first user that trust auth lets in."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: PostgreSQL scale-out tests need it")
    errors = []
    for user in PG_USERS:
        try:
            connection = psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", autocommit=True, connect_timeout=3
            )
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip()}")
            continue
        return connection, user
    pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} ({'; '.join(errors)})")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, uniquely named database for this test, dropped afterwards."""
    admin, user = _postgres_admin()
    name = f"csgclaw_scaleout_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgres://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        # FORCE: a server that did not close its connections in time must not leave the database behind.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc})")
    return REDIS_URL
