"""The `messages/send` action of `/api/bots/{bot_id}/`: a bot posts into a room (http-api.md §7.5).

Besides JSON, the body may be `multipart/form-data` with a `payload` field and `files` parts, as on the
other message sends (threads-attachments.md §2.4; an issue 14 extension for this route). `send_body` reads
either form for this route and the participant send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from bots import services
from core.db.threads import REQUEST_THREAD
from core.http import checked_field_types, method_not_allowed, parse_json_body
from im.attachments.multipart import (
    check_attachment_limits,
    discard_uploads,
    is_multipart,
    parse_message_multipart,
    payload_errors,
)
from im.attachments.storage import IncomingFile

_SEND_STRINGS = ("room_id", "chat_id", "text")


@contextmanager
def send_body(
    request: HttpRequest,
    *,
    strings: tuple[str, ...],
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[tuple[dict[str, Any], list[IncomingFile]]]:
    """A plain-Django send's body and files, JSON or multipart, in the check order of §2.4.

    `check` runs the route's own decode checks, whose texts then say `decode payload: …` for a multipart
    payload. The files the block did not store are removed when it ends.
    """
    upload = parse_message_multipart(request, request) if is_multipart(request.content_type or "") else None
    files = upload.files if upload else []
    try:
        with payload_errors(multipart=upload is not None):
            if upload is None:
                body = parse_json_body(request, strings=strings)
            else:
                body = checked_field_types(upload.payload, strings=strings)
            if check is not None:
                check(body)
        if upload:
            check_attachment_limits(upload)
        yield body, files
    finally:
        discard_uploads(files)


def _send(request: HttpRequest, bot_id: str) -> HttpResponse:
    # Errors propagate to ApiErrorMiddleware, which renders the contract's 4xx texts.
    with send_body(request, strings=_SEND_STRINGS) as (body, files):
        message = services.bot_message_send(
            bot_id=bot_id,
            room_id=body.get("room_id", ""),
            chat_id=body.get("chat_id", ""),
            text=body.get("text", ""),
            files=files,
        )
    return JsonResponse({"message_id": message.message_id})


async def message_send(request: HttpRequest, bot_id: str) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request)
    return await REQUEST_THREAD.run(_send, request, bot_id)
