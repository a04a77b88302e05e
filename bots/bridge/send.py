"""The `messages/send` action of `/api/bots/{bot_id}/`: a bot posts into a room (http-api.md §7.5)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from bots import services
from core.db.threads import REQUEST_THREAD
from core.http import method_not_allowed, parse_json_body


def _send(request: HttpRequest, bot_id: str) -> HttpResponse:
    # Errors propagate to ApiErrorMiddleware, which renders the contract's 4xx texts.
    body = parse_json_body(request, strings=("room_id", "chat_id", "text"))
    message = services.bot_message_send(
        bot_id=bot_id,
        room_id=body.get("room_id", ""),
        chat_id=body.get("chat_id", ""),
        text=body.get("text", ""),
    )
    return JsonResponse({"message_id": message.message_id})


async def message_send(request: HttpRequest, bot_id: str) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request)
    return await REQUEST_THREAD.run(_send, request, bot_id)
