"""The participant routes of PicoClaw 2026.6.x: event stream (participants.md §2) and send (§3).

Plain Django async views like the bot routes. Check order: 404 (path) → 405 → 401 → the route's own.
The bearer check accepts an agent's own token when the path id resolves to that agent (§1.3).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bots.bridge.auth import bearer_allowed
from bots.bridge.send import send_body
from bots.participants import services
from bots.participants.feishu import feishu_participant_events
from bots.participants.identity import participant_agent_token, participant_resolve
from bots.participants.stream import participant_feed, recipient_load
from core.db.threads import REQUEST_THREAD, STREAM_READ
from core.http import (
    ApiError,
    clean_text,
    error_response,
    method_not_allowed,
    not_found,
)
from im.realtime.sse import Feed, event_stream_response

CSGCLAW_CHANNEL = "csgclaw"
FEISHU_CHANNEL = "feishu"

_SEND_STRINGS = ("room_id", "chat_id", "text", "content", "thread_root_id", "topic_id", "message_id")
_CONTEXT_STRINGS = ("chat_id", "topic_id")


async def _authorized(request: HttpRequest, path_id: str) -> bool:
    return await bearer_allowed(
        request.headers.get("Authorization", ""), bot_id=path_id, token_of=participant_agent_token
    )


def _stream_setup(path_id: str) -> Feed:
    return participant_feed(recipient_load(participant_resolve(path_id)))


# Exempt like every /api/ route: a POST must get the contract's 405, not a CSRF 403.
@csrf_exempt
async def participant_events(request: HttpRequest, channel: str, participant_id: str) -> HttpResponse:
    """GET /api/v1/channels/{channel}/participants/{id}/events (§2.1; `feishu` is §2.8)."""
    path_id = clean_text(participant_id).strip()
    if channel not in (CSGCLAW_CHANNEL, FEISHU_CHANNEL) or not path_id:
        return not_found(request)
    if request.method != "GET":
        return method_not_allowed(request)
    if channel == FEISHU_CHANNEL:
        return await feishu_participant_events(request, path_id)
    if not await _authorized(request, path_id):
        return error_response(request, 401, "unauthorized")
    feed = await STREAM_READ.run(_stream_setup, path_id)
    return event_stream_response(request, feed)


def _first_text(*values: Any) -> str:
    return next((value.strip() for value in values if isinstance(value, str) and value.strip()), "")


def _object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f'decode request: field "{name}" must be an object')
    return value


def _check_objects(body: dict[str, Any]) -> None:
    """§3.2's object fields: `context` and `metadata` are objects, `context`'s room and thread strings."""
    context = _object_field(body, "context")
    _object_field(body, "metadata")
    for name in _CONTEXT_STRINGS:
        if context.get(name) is not None and not isinstance(context[name], str):
            raise ApiError(400, f'decode request: field "context.{name}" must be a string')


def _send(request: HttpRequest, path_id: str) -> HttpResponse:
    # Errors propagate to ApiErrorMiddleware, which renders the contract's 4xx texts.
    with send_body(request, strings=_SEND_STRINGS, check=_check_objects) as (body, files):
        context = _object_field(body, "context")
        message = services.participant_message_send(
            participant_id=path_id,
            room_id=_first_text(body.get("room_id"), body.get("chat_id"), context.get("chat_id")),
            text=_first_text(body.get("text"), body.get("content")),
            thread_root_id=_first_text(
                body.get("thread_root_id"), body.get("topic_id"), context.get("topic_id")
            ),
            message_id=body.get("message_id", ""),
            metadata=_object_field(body, "metadata"),
            files=files,
        )
    return JsonResponse({"message_id": message.message_id})


@csrf_exempt
async def participant_messages(request: HttpRequest, channel: str, participant_id: str) -> HttpResponse:
    """POST /api/v1/channels/csgclaw/participants/{id}/messages (§3.4 checks 1–4, then the service)."""
    path_id = clean_text(participant_id).strip()
    if channel != CSGCLAW_CHANNEL or not path_id:
        return not_found(request)
    if request.method != "POST":
        return method_not_allowed(request)
    if not await _authorized(request, path_id):
        return error_response(request, 401, "unauthorized")
    return await REQUEST_THREAD.run(_send, request, path_id)
