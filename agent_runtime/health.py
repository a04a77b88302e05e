"""PicoClaw's gateway health endpoint `/health` and `/ready` (`pkg/health/server.go`; spec §1.5)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import time
from collections.abc import Callable

from agent_runtime.contracts import Settings

log = logging.getLogger("agent_runtime.channel")

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
# A request line and headers of a health probe are tiny; anything slower or larger is dropped.
_READ_TIMEOUT = 5.0
_MAX_HEADER_BYTES = 8192


class HealthServer:
    """Plain HTTP/1.1, one response per connection; `ready()` says whether the stream is connected."""

    def __init__(self, settings: Settings, *, ready: Callable[[], bool]) -> None:
        self.host = settings.health_host
        self.port = settings.health_port
        self.enabled = settings.health_enabled
        self._ready = ready
        self._started = time.monotonic()
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> bool:
        """Listen; a taken port is logged at INFO and the runtime carries on without the endpoint."""
        if not self.enabled:
            return False
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.info("health endpoint not started: %s:%s is in use", self.host, self.port)
            else:
                log.info("health endpoint not started: %s:%s: %s", self.host, self.port, exc)
            return False
        log.info("health endpoint listening on %s:%s", self.host, self.bound_port)
        return True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def response(self, path: str) -> tuple[int, dict]:
        uptime = f"{int(time.monotonic() - self._started)}s"
        if path == "/health":
            return 200, {"status": "ok", "uptime": uptime, "pid": os.getpid()}
        if path == "/ready":
            if self._ready():
                return 200, {"status": "ready", "uptime": uptime, "pid": os.getpid()}
            return 503, {"status": "not ready", "uptime": uptime, "pid": os.getpid()}
        return 404, {}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        parts = head[:_MAX_HEADER_BYTES].split(b"\r\n", 1)[0].decode("latin-1").split()
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        status, payload = self.response(path if parts and parts[0] in ("GET", "HEAD") else "")
        body = (
            (json.dumps(payload, separators=(",", ":")) + "\n").encode()
            if payload
            else b"404 page not found\n"
        )
        content_type = "application/json" if payload else "text/plain; charset=utf-8"
        head_out = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        # A prober that hangs up early has nothing left to tell; the endpoint just closes its side.
        with contextlib.suppress(ConnectionError):
            writer.write(head_out + (b"" if parts and parts[0] == "HEAD" else body))
            await writer.drain()
        writer.close()
