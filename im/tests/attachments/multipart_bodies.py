"""Raw multipart/form-data bodies, so tests control every part, name and header."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

BOUNDARY = "csgclaw-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def field_part(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def file_part(name: str, file_name: str, data: bytes, content_type: str | None = None) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def multipart_body(
    payload: dict[str, Any] | str | None,
    files: Iterable[tuple[str, bytes, str | None]] = (),
    field: str = "files",
) -> bytes:
    """`payload` (JSON-encoded unless a string; None leaves it out) and `(name, bytes, type)` files."""
    parts = []
    if payload is not None:
        parts.append(field_part("payload", payload if isinstance(payload, str) else json.dumps(payload)))
    parts.extend(file_part(field, name, data, content_type) for name, data, content_type in files)
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
