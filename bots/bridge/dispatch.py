"""The `/api/bots/{bot_id}/…` routes: one parser for the whole prefix, then auth, then the action.

Plain Django async views (streams and the LLM proxy cannot be DRF views), with manual bearer auth.
Check order for every action: 404 (path) → 401 → 405 → the action's own checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bots.bridge.auth import bearer_allowed
from bots.bridge.send import message_send
from bots.bridge.streams import bot_events
from bots.llm import views as llm
from core.http import clean_text, error_response, not_found

BOTS_PREFIX = "/api/bots/"

BotAction = Callable[[HttpRequest, str], Awaitable[HttpResponse]]


def parse_bot_path(path: str) -> tuple[str, str] | None:
    """(bot_id, action) of a decoded `/api/bots/…` path, or None when it is not a bot route.

    The bot id is neither trimmed nor looked up: an unknown bot still gets an (empty) stream.
    """
    segments = path.removeprefix(BOTS_PREFIX).strip("/").split("/")
    if len(segments) < 2 or not segments[0]:
        return None
    return segments[0], "/".join(segments[1:])


ACTIONS: dict[str, BotAction] = {
    "events": bot_events,
    "messages/send": message_send,
    "llm/models": llm.llm_models,
    "llm/v1/models": llm.llm_models,
    "llm/chat/completions": llm.llm_chat_completions,
    "llm/v1/chat/completions": llm.llm_chat_completions,
}


# Exempt like every /api/ route: boxes and SDKs send no CSRF cookie (http-api.md §1.1).
@csrf_exempt
async def bot_api(request: HttpRequest, rest: str = "") -> HttpResponse:
    parsed = parse_bot_path(request.path)
    if parsed is None or parsed[1] not in ACTIONS:
        return not_found(request)
    bot_id, action = parsed
    # As for every path parameter (http-api.md §1.2): NUL and lone surrogates cannot reach the database.
    bot_id = clean_text(bot_id)
    if not await bearer_allowed(request.headers.get("Authorization", ""), bot_id=bot_id):
        return error_response(request, 401, "unauthorized")
    return await ACTIONS[action](request, bot_id)
