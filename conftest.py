"""Shared pytest fixtures: live Daphne servers in subprocesses, and SSE responses read through ASGI.

`daphne_server` / `daphne_factory` run the real settings on a throw-away state directory (events.md §7):
    server = daphne_factory(sse_lifetime=1)            # own state directory, migrated SQLite database
    state = live_state_factory(extra_env={"DATABASE_URL": ..., "REDIS_URL": ...})
    first, second = daphne_factory(state=state), daphne_factory(state=state)   # two processes, one state
`asgi_stream` opens a stream on Django's ASGI application in-process, one body chunk per frame.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from csgclaw_site.tests.asgi_scope import http_scope

REPO_ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"

# A loaded 2-core CI box needs several seconds to import Django and bind; these bound every wait.
STARTUP_SECONDS = 45.0
MANAGE_SECONDS = 120.0
STOP_SECONDS = 5.0
PORT_ATTEMPTS = 3
SERVER_LOG_TAIL = 6000

# Only what a subprocess needs in order to run at all; every setting is explicit in `live_env`.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


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


def live_env(home: Path, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of live servers and their manage.py commands: real settings, test-sized timings."""
    env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "csgclaw_site.settings",
            "DJANGO_SECRET_KEY": "live-test-secret-key-not-for-production",
            "CSGCLAW_HOME": str(home),
            "CSGCLAW_SANDBOX_PROVIDER_CLASS": "sandbox.providers.fake.FakeProvider",
            "CSGCLAW_SANDBOX_INLINE": "true",
            "CSGCLAW_WORKER_INTRO_DELAY": "0",
            "CSGCLAW_BOOTSTRAP_ON_START": "false",
            "CSGCLAW_SSE_HEARTBEAT": "0.2",
            "CSGCLAW_SSE_POLL_INTERVAL": "0.1",
            "CSGCLAW_SSE_MAX_LIFETIME": "30",
        }
    )
    env.update(extra_env or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def manage_py(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`manage.py <args>` in a subprocess; with `check`, a non-zero exit fails the test with its output."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MANAGE_SECONDS,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"manage.py {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return result


@dataclass
class LiveState:
    """A state directory and a migrated database, shared by the live servers started on it."""

    home: Path
    env: dict[str, str]

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return manage_py(self.env, *args, check=check)


@dataclass
class LiveServer:
    """One Daphne subprocess serving `csgclaw_site.asgi:application` on loopback."""

    state: LiveState
    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def home(self) -> Path:
        return self.state.home

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A manage.py command against this server's state (its database and state directory)."""
        return self.state.manage(*args, check=check)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An async client for this server; proxy variables of the environment are ignored."""
        kwargs.setdefault("timeout", httpx.Timeout(10.0))
        return httpx.AsyncClient(base_url=self.base_url, trust_env=False, **kwargs)

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn_daphne(state: LiveState, env: dict[str, str], port: int) -> LiveServer:
    log_path = state.home / f"daphne-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", LOOPBACK, "-p", str(port), "csgclaw_site.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for pytest does not race the fixture's teardown.
            start_new_session=True,
        )
    return LiveServer(state=state, env=env, port=port, process=process, log_path=log_path)


def _wait_until_healthy(server: LiveServer) -> bool:
    """True once GET /healthz answers `ok`; False if the process exits first or the wait runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if client.get("/healthz").text == "ok":
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return False


def start_daphne(state: LiveState, env: dict[str, str]) -> LiveServer:
    """A healthy server, or a test failure that shows the server's output."""
    for _ in range(PORT_ATTEMPTS):
        server = _spawn_daphne(state, env, free_port())
        if _wait_until_healthy(server):
            return server
        server.stop()
        # Another process may take the free port between the probe and Daphne's bind: try another one.
        if "Address already in use" not in server.log():
            break
    pytest.fail(
        f"daphne on {server.base_url} did not answer GET /healthz with `ok` within {STARTUP_SECONDS:g}s "
        f"(exit code {server.process.returncode})\n--- server output\n{server.log()[-SERVER_LOG_TAIL:]}",
        pytrace=False,
    )


class _SqliteTemplate:
    """One migrated SQLite database per session, copied for each live state (migrating costs seconds)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._database: Path | None = None

    def copy_to(self, home: Path) -> None:
        if self._database is None:
            manage_py(live_env(self.directory), "migrate", "--no-input", "--verbosity", "0")
            self._database = self.directory / "csgclaw.sqlite3"
        # The backup API also copies pages still in the template's write-ahead log.
        source = sqlite3.connect(self._database)
        target = sqlite3.connect(home / "csgclaw.sqlite3")
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SqliteTemplate]:
    directory = tmp_path_factory.mktemp("live-template")
    yield _SqliteTemplate(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def live_state_factory(
    tmp_path_factory: pytest.TempPathFactory, _sqlite_template: _SqliteTemplate
) -> Callable[..., LiveState]:
    """New state directories with a migrated database: SQLite in the directory, or `DATABASE_URL`."""

    def create(*, extra_env: Mapping[str, str] | None = None) -> LiveState:
        home = tmp_path_factory.mktemp("live-home")
        state = LiveState(home=home, env=live_env(home, extra_env))
        if state.env.get("DATABASE_URL"):
            state.manage("migrate", "--no-input", "--verbosity", "0")
        else:
            _sqlite_template.copy_to(home)
        return state

    return create


@pytest.fixture
def daphne_factory(live_state_factory: Callable[..., LiveState]) -> Iterator[Callable[..., LiveServer]]:
    """Start live servers; each gets a new state unless `state` is given. All are stopped at teardown."""
    servers: list[LiveServer] = []

    def start(
        *,
        state: LiveState | None = None,
        sse_lifetime: float | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> LiveServer:
        state = state or live_state_factory()
        env = dict(state.env)
        if sse_lifetime is not None:
            env["CSGCLAW_SSE_MAX_LIFETIME"] = str(sse_lifetime)
        env.update(extra_env or {})
        server = start_daphne(state, env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        # Shown by pytest only when the test failed.
        print(f"--- daphne {server.base_url} output ---\n{server.log()[-SERVER_LOG_TAIL:]}")


@pytest.fixture
def daphne_server(daphne_factory: Callable[..., LiveServer]) -> LiveServer:
    return daphne_factory()


# --- streams through ASGI, without a server ----------------------------------------------------------


@dataclass(frozen=True)
class SseFrame:
    """One SSE frame as written by the server: `id:`, optional `event:`, and the raw `data:` text."""

    id: int
    event: str
    data_text: str
    raw: bytes

    @property
    def data(self) -> Any:
        return json.loads(self.data_text)

    @classmethod
    def parse(cls, raw: bytes) -> SseFrame:
        assert raw.endswith(b"\n\n") and raw.count(b"\n\n") == 1, raw
        fields: dict[str, list[str]] = {}
        for line in raw.decode()[:-2].split("\n"):
            name, separator, value = line.partition(": ")
            assert separator and name in ("id", "event", "data"), raw
            fields.setdefault(name, []).append(value)
        assert all(len(values) == 1 for values in fields.values()), raw
        return cls(
            id=int(fields["id"][0]),
            event=fields.get("event", [""])[0],
            data_text=fields["data"][0],
            raw=raw,
        )


class AsgiStream:
    """An SSE response of Django's ASGI application, read one `http.response.body` message at a time."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.start: dict[str, Any] = {}
        self.ended = False

    @property
    def status(self) -> int:
        return self.start["status"]

    @property
    def headers(self) -> dict[str, str]:
        return {name.decode().lower(): value.decode() for name, value in self.start["headers"]}

    async def chunk(self, timeout: float = 5.0) -> bytes:
        """The next body chunk (one frame or comment). Raises AssertionError once the body has ended."""
        assert not self.ended, "the response body has already ended"
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "http.response.body", message
        self.ended = not message.get("more_body", False)
        return message.get("body", b"")

    async def frame(self, timeout: float = 5.0) -> SseFrame:
        """The next frame, skipping `: ping` comments."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, "no frame arrived in time"
            body = await self.chunk(remaining)
            assert not self.ended, "the stream ended before a frame arrived"
            if body != b": ping\n\n":
                return SseFrame.parse(body)

    async def frames(self, count: int, timeout: float = 10.0) -> list[SseFrame]:
        deadline = asyncio.get_running_loop().time() + timeout
        return [await self.frame(deadline - asyncio.get_running_loop().time()) for _ in range(count)]

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Hang up like a client and wait until the application has finished."""
        if not self.communicator.future.done():
            await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout)


@pytest.fixture
async def asgi_stream() -> AsyncIterator[Callable[..., Any]]:
    """Open a GET stream on the ASGI application: `await asgi_stream(path, headers={}, query={})`.

    Returns an `AsgiStream` after the `http.response.start` message; streams still open at teardown
    are disconnected. Tests that use it need `@pytest.mark.django_db(transaction=True)`.
    """
    from channels.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
    opened: list[AsgiStream] = []

    async def open_stream(
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        method: str = "GET",
        start_timeout: float = 5.0,
    ) -> AsgiStream:
        query_string = urlencode(query or {}).encode()
        scope = http_scope(method, path, headers=headers, query_string=query_string)
        stream = AsgiStream(ApplicationCommunicator(application, scope))
        opened.append(stream)
        await stream.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        stream.start = await stream.communicator.receive_output(start_timeout)
        assert stream.start["type"] == "http.response.start", stream.start
        return stream

    yield open_stream
    for stream in opened:
        await stream.disconnect()
