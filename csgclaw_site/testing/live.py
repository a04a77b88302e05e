"""Live Daphne servers in subprocesses, on throw-away state directories, for end-to-end tests.

`daphne_server` / `daphne_factory` run the real settings on a throw-away state directory (events.md §7):
    server = daphne_factory(sse_lifetime=1)            # own state directory, migrated SQLite database
    state = live_state_factory(extra_env={"DATABASE_URL": ..., "REDIS_URL": ...})
    first, second = daphne_factory(state=state), daphne_factory(state=state)   # two processes, one state
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
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
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").text == "ok":
                    return True
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


async def next_sse_event(events: AsyncIterator[ServerSentEvent], timeout: float = 5.0) -> ServerSentEvent:
    """The next event that carries data, skipping heartbeats.

    httpx-sse 0.4 dispatches an empty `message` event for a heartbeat comment that follows a frame with an
    `id:` (its decoder counts the remembered id as content); PicoClaw and browsers ignore such blanks, so
    the tests do too.
    """
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.data or event.event != "message":
                return event
    raise AssertionError("the stream ended before the next event")


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, *, timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """The first truthy result of `check`, polled every `interval` until `timeout`; then a failure that
    says `what` and the last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    result = None
    while loop.time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {result!r})")


def stream_started(state: LiveState, *, kind: str, key: str) -> bool:
    """Whether a live server remembers a cursor for this bot or participant stream: it writes one as soon
    as the stream has resolved where it starts, so a message posted afterwards reaches the stream."""
    connection = sqlite3.connect(state.home / "csgclaw.sqlite3")
    try:
        row = connection.execute(
            "SELECT 1 FROM im_streamcursor WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
    finally:
        connection.close()
    return row is not None
