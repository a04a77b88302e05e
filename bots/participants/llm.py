"""The agent-scoped LLM proxy `/api/v1/agents/{id}/llm/…` (participants.md §5.1–§5.7).

Current PicoClaw images call the model here instead of `/api/bots/{id}/llm/…`. The path id may be any
alias of an agent (participant, `agent-`, `u-` or bare ids, §1.3 steps 2–4); once resolved, the call is the
bot bridge's own (bots/llm/views.py): same relay, limits, timeouts, usage rows and overhead header. Only these
routes serve the Responses API (§5.5–§5.6). Unlike the bot routes, the method is checked before auth, as
upstream's router does (§5.2).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from bots import selectors
from bots.bridge.auth import bearer_allowed
from bots.llm import views as llm
from bots.participants.identity import participant_agent_id
from core.errors import NotFound
from core.http import clean_text, error_response, method_not_allowed, not_found
from im.identity import ADMIN_ID

WEBSOCKET_REQUIRED_TEXT = "responses websocket upgrade is required"

AgentLlmHandler = Callable[[HttpRequest, str], Awaitable[HttpResponse]]


def _names_itself(path_id: str) -> bool:
    """True when an agent with exactly this id is the agent the id resolves to (§1.3), if it exists.

    Boxes and the built-in runtime call with the agent's own id (`u-…`); the primary-key read answers
    those in a few dozen microseconds where the full alias resolution costs the better part of a
    millisecond of the bridge's budget. Among `u-` ids only the admin's is claimed before step 3 (step 1);
    `u-manager` is claimed by step 2, which picks the agent `u-manager` first.
    """
    return path_id.startswith("u-") and path_id != ADMIN_ID


def agent_llm_target_get(path_id: str) -> tuple[str, selectors.LlmTarget]:
    """The resolved agent id and its LLM target, in one bridge hop: resolution and model lookup together.

    An id naming no agent (the admin's included) is 404 with the id as the client gave it.
    """
    if _names_itself(path_id):
        # A miss falls through: `u-alice` may still name `u-Alice` by the later steps.
        with suppress(NotFound):
            return path_id, selectors.llm_target_get(path_id)
    agent_id = participant_agent_id(path_id)
    if agent_id is None:
        raise NotFound(f'agent "{path_id}" not found')
    return agent_id, selectors.llm_target_get(agent_id)


def agent_token_get(path_id: str) -> str | None:
    """The own token of the agent the path id names: an agent's token opens its routes under every alias."""
    if _names_itself(path_id):
        token = selectors.agent_api_token(path_id)
        if token is not None:
            return token
    agent_id = participant_agent_id(path_id)
    return None if agent_id is None else selectors.agent_api_token(agent_id)


async def _models(request: HttpRequest, path_id: str) -> HttpResponse:
    return await llm.llm_models(request, path_id, target_get=agent_llm_target_get)


async def _chat_completions(request: HttpRequest, path_id: str) -> HttpResponse:
    return await llm.llm_chat_completions(request, path_id, target_get=agent_llm_target_get)


async def _responses(request: HttpRequest, path_id: str) -> HttpResponse:
    return await llm.llm_responses(request, path_id, target_get=agent_llm_target_get)


async def _responses_websocket(request: HttpRequest, path_id: str) -> HttpResponse:
    """§5.7: the WebSocket variant is not supported, and a plain GET cannot be upgraded here."""
    return llm.answered_locally(error_response(request, 400, WEBSOCKET_REQUIRED_TEXT), time.monotonic())


# Action → method → handler.
ROUTES: dict[str, dict[str, AgentLlmHandler]] = {
    "/models": {"GET": _models},
    "/v1/models": {"GET": _models},
    "/chat/completions": {"POST": _chat_completions},
    "/v1/chat/completions": {"POST": _chat_completions},
    "/responses": {"GET": _responses_websocket, "POST": _responses},
    "/v1/responses": {"GET": _responses_websocket, "POST": _responses},
}


# Exempt like every /api/ route: boxes and SDKs send no CSRF cookie (http-api.md §1.1).
@csrf_exempt
async def agent_llm(request: HttpRequest, agent_id: str, rest: str | None = None) -> HttpResponse:
    """404 (path) → 405 (method, before auth) → 401 → the bot bridge's checks from the size check on."""
    started = time.monotonic()
    # As for every path parameter (http-api.md §1.2): NUL and lone surrogates cannot reach the database.
    path_id = clean_text(agent_id).strip()
    action = rest or ""
    methods = ROUTES.get(action)
    if not path_id or methods is None:
        return not_found(request)
    handler = methods.get(request.method or "")
    if handler is None:
        return llm.answered_locally(method_not_allowed(request), started)
    if not await bearer_allowed(
        request.headers.get("Authorization", ""), bot_id=path_id, token_of=agent_token_get
    ):
        return error_response(request, 401, "unauthorized")
    return await handler(request, path_id)
