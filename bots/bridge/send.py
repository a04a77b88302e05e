"""The `messages/send` action of `/api/bots/{bot_id}/`: a bot posts into a room (http-api.md §7.5).

Besides JSON, the body may be `multipart/form-data` with a `payload` field and `files` parts, as on the
other message sends (threads-attachments.md §2.4; an issue 14 extension for this route).
"""

from __future__ import annotations

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

_SEND_STRINGS = ("room_id", "chat_id", "text")


def _send(request: HttpRequest, bot_id: str) -> HttpResponse:
    # Errors propagate to ApiErrorMiddleware, which renders the contract's 4xx texts.
    upload = parse_message_multipart(request, request) if is_multipart(request.content_type or "") else None
    files = upload.files if upload else []
    try:
        with payload_errors(multipart=upload is not None):
            if upload is None:
                body = parse_json_body(request, strings=_SEND_STRINGS)
            else:
                body = checked_field_types(upload.payload, strings=_SEND_STRINGS)
        if upload:
            check_attachment_limits(upload)
        message = services.bot_message_send(
            bot_id=bot_id,
            room_id=body.get("room_id", ""),
            chat_id=body.get("chat_id", ""),
            text=body.get("text", ""),
            files=files,
        )
    finally:
        # Stored files were moved to their blobs; whatever is left was refused.
        discard_uploads(files)
    return JsonResponse({"message_id": message.message_id})


async def message_send(request: HttpRequest, bot_id: str) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request)
    return await REQUEST_THREAD.run(_send, request, bot_id)
