"""The Feishu participant stream (participants.md §2.8): the relay stream of events.md §4 under a new name."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bots.bridge.auth import bearer_allowed
from bots.bridge.streams import feishu_feed
from bots.feishu.client import FeishuError, feishu_app_configured, feishu_open_id
from bots.participants.identity import participant_agent_token, strip_participant_id
from core.db.threads import STREAM_READ
from core.http import error_response
from im.realtime.sse import event_stream_response


def feishu_table_id(path_id: str) -> str:
    """The `[channels.feishu.<x>]` table a path id names: itself, `u-<strip>`, `<strip>`; else itself."""
    stripped = strip_participant_id(path_id)
    candidates = (path_id, f"u-{stripped}", stripped)
    return next((candidate for candidate in candidates if feishu_app_configured(candidate)), path_id)


def feishu_participant_open_id(path_id: str) -> str:
    return feishu_open_id(feishu_table_id(path_id))


async def feishu_participant_events(request: HttpRequest, path_id: str) -> HttpResponse:
    """After the route's 404 and 405 checks: 401 → 400 open_id → the relay stream (memory key: path id)."""
    authorization = request.headers.get("Authorization", "")
    if not await bearer_allowed(authorization, bot_id=path_id, token_of=participant_agent_token):
        return error_response(request, 401, "unauthorized")
    try:
        open_id = await STREAM_READ.run(feishu_participant_open_id, path_id)
    except FeishuError as exc:
        return error_response(request, 400, f"resolve feishu bot open_id: {exc.message}")
    return event_stream_response(request, feishu_feed(bot_id=path_id, open_id=open_id))
