"""The download answer of an attachment (threads-attachments.md §2.7): headers, Range, streamed blob bytes.

The blob is read chunk by chunk on a thread pool and handed to the server as an async iterator: a plain
FileResponse over a file would be read whole into memory by Django's ASGI handler. Issue 14 asks for
single byte ranges (206, or 416 when unsatisfiable); a request with several ranges gets the whole file.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from django.http import FileResponse, HttpRequest, HttpResponse

from core.db.threads import STREAM_READ
from core.flow import client_keeps_up, current_connection
from core.http import error_response
from im.attachments.storage import blob_path
from im.models import Attachment

CHUNK_BYTES = 256 * 1024
# Daphne's `send` never waits for the socket: without this bound a slow client would make the server
# hold the whole file in its write buffer. A client that takes nothing for STALLED_SECONDS is dropped.
MAX_UNSENT_BYTES = 1024 * 1024
STALLED_SECONDS = 60.0
_DRAIN_POLL_SECONDS = 0.02
CACHE_IMMUTABLE = "private, max-age=31536000, immutable"
CACHE_NONE = "no-store"
CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
RANGE_NOT_SATISFIABLE_TEXT = "requested range not satisfiable"

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# RFC 2045 tspecials and what Go's mime.FormatMediaType does not leave bare in a token.
_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
# Characters Go percent-encodes in an RFC 2231 value besides non-tokens.
_ENCODED_IN_EXTENDED = frozenset("*'%")


def _is_token_char(char: str) -> bool:
    return " " < char < "\x7f" and char not in _TSPECIALS


def content_disposition(media_type: str, name: str) -> str:
    """`inline` for images, else `attachment`, with the file name formatted as Go's mime.FormatMediaType."""
    disposition = "inline" if media_type.startswith("image/") else "attachment"
    if any((char < " " or char > "~") and char != "\t" for char in name):
        encoded = "".join(
            char if _is_token_char(char) and char not in _ENCODED_IN_EXTENDED else quote(char, safe="")
            for char in name
        )
        return f"{disposition}; filename*=utf-8''{encoded}"
    if name and all(_is_token_char(char) for char in name):
        return f"{disposition}; filename={name}"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'{disposition}; filename="{escaped}"'


def requested_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(first, last) of one satisfiable byte range; None to send everything; False when unsatisfiable.

    Headers that are not one `bytes=` range (several ranges, other units, syntax errors) are ignored, as
    RFC 9110 allows.
    """
    match = _SINGLE_RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return False
    return start, min(int(last) if last else size - 1, size - 1)


async def blob_chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of a blob from `start`, read off the event loop as fast as the client takes them;
    opened only once iteration starts."""
    connection = current_connection.get()
    handle = await STREAM_READ.run(open, path, "rb")
    try:
        if start:
            await STREAM_READ.run(handle.seek, start)
        remaining = length
        while remaining > 0:
            if not await client_keeps_up(
                connection,
                max_unsent=MAX_UNSENT_BYTES,
                stalled_seconds=STALLED_SECONDS,
                poll_seconds=_DRAIN_POLL_SECONDS,
            ):
                connection.abort()
                return
            chunk = await STREAM_READ.run(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def attachment_response(
    request: HttpRequest,
    attachment: Attachment,
    *,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
) -> HttpResponse:
    """200 (or 206/416 for a Range request) streaming the blob, with every header of §2.7."""
    size = attachment.size_bytes
    wanted = requested_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = error_response(request, 416, RANGE_NOT_SATISFIABLE_TEXT)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    start, end = wanted if wanted else (0, size - 1)
    length = end - start + 1 if size else 0
    response = FileResponse(
        blob_chunks(blob_path(attachment.sha256), start, length),
        status=206 if wanted else 200,
        content_type=attachment.media_type,
    )
    response["Content-Length"] = str(length)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = cache_control
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = content_disposition(attachment.media_type, attachment.safe_name)
    for name, value in (extra_headers or {}).items():
        response[name] = value
    return response
