"""The bot event stream (events.md §3) and the Feishu relay stream (events.md §4), with cursor memory.

Both are filtered views of the durable log through the shared SSE generator (im.realtime.sse): the
recipients of every row were fixed when it was written, so replay and live delivery agree.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bots.bridge.auth import bearer_allowed
from bots.bridge.cursors import StoredCursorMemory, StreamCursorKind
from bots.feishu.client import FeishuError, feishu_open_id
from core.db.threads import STREAM_READ
from core.http import clean_text, error_response, method_not_allowed, not_found
from im.events import MESSAGE_CREATED
from im.models import EventStream
from im.realtime.eventlog import EventSelection, LoggedEvent
from im.realtime.sse import Feed, event_stream_response

BOT_FRAME_EVENT = "message"


def bot_event_data(event: LoggedEvent, *, bot_id: str) -> dict[str, Any]:
    """The stored bot frame, plus `mentions: [bot_id]` only for a bot the message mentions (§3.3)."""
    data = dict(event.bot_payload or {})
    if event.mentioned:
        data["mentions"] = [bot_id]
    return data


def feishu_event_data(event: LoggedEvent) -> dict[str, Any]:
    return event.payload


def bot_feed(bot_id: str) -> Feed:
    """`message.created` rows addressed to `bot_id`; an unknown id simply matches nothing."""
    return Feed(
        selection=EventSelection(stream=EventStream.IM, recipient_id=bot_id, types=(MESSAGE_CREATED,)),
        data=partial(bot_event_data, bot_id=bot_id),
        event_name=BOT_FRAME_EVENT,
        memory=StoredCursorMemory(kind=StreamCursorKind.BOT, key=bot_id),
    )


def feishu_feed(*, bot_id: str, open_id: str) -> Feed:
    """Relay rows whose mention list holds `open_id`; the cursor is remembered under the path id."""
    return Feed(
        selection=EventSelection(stream=EventStream.FEISHU, recipient_id=open_id),
        data=feishu_event_data,
        memory=StoredCursorMemory(kind=StreamCursorKind.FEISHU, key=bot_id),
    )


async def bot_events(request: HttpRequest, bot_id: str) -> HttpResponse:
    """`events` action of /api/bots/{bot_id}/ (path and bearer checks passed in dispatch.py)."""
    if request.method != "GET":
        return method_not_allowed(request)
    return event_stream_response(request, bot_feed(bot_id))


# Exempt like every /api/ route: a POST must get the contract's 405, not a CSRF 403.
@csrf_exempt
async def feishu_bot_events(request: HttpRequest, bot_id: str) -> HttpResponse:
    """GET /api/v1/channels/feishu/bots/{id}/events: 404 → 405 → 401 → 400 open_id → stream."""
    bot_id = clean_text(bot_id).strip()
    if not bot_id:
        return not_found(request)
    if request.method != "GET":
        return method_not_allowed(request)
    if not await bearer_allowed(request.headers.get("Authorization", ""), bot_id=bot_id):
        return error_response(request, 401, "unauthorized")
    try:
        open_id = await STREAM_READ.run(feishu_open_id, bot_id)
    except FeishuError as exc:
        return error_response(request, 400, f"resolve feishu bot open_id: {exc.message}")
    return event_stream_response(request, feishu_feed(bot_id=bot_id, open_id=open_id))
