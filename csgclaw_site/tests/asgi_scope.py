"""The HTTP scope Daphne would hand the application, for tests that drive it with ApplicationCommunicator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def http_scope(
    method: str, path: str, *, headers: Mapping[str, str] | None = None, query_string: bytes = b""
) -> dict[str, Any]:
    """A request from 127.0.0.1 to `testserver`; header names are lower-cased as ASGI requires."""
    pairs = (headers or {}).items()
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver"), *encoded],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
