"""Bearer authentication of the bot, participant and agent LLM routes: the server token or the agent's own.

Which credential a token is lives in agents/credentials.py (shared with the remote-caller check of
security.md S4); this module adds the per-route rule of S2.2: an agent's token opens only its own routes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from agents.credentials import PLACEHOLDER_TOKEN, auth_disabled, bearer_token, is_server_token
from bots.selectors import agent_api_token
from core.db.threads import BRIDGE_READ
from im.selectors import is_lookup_id


async def bearer_allowed(
    authorization: str, *, bot_id: str, token_of: Callable[[str], str | None] = agent_api_token
) -> bool:
    """True when auth is off, the server token matches, or the token is this bot's own agent token.

    An agent token opens only the routes of its own bot id, never another bot's. `token_of` maps the
    route's id to the token of the agent it names (routes whose ids are aliases resolve them there); it
    runs on a bridge database thread only when the server token did not match, and reads the database
    each time, so a rotated token fails at once. The placeholder opens nothing (S1.2).
    """
    if auth_disabled():
        return True
    token = bearer_token(authorization)
    if not token or token == PLACEHOLDER_TOKEN:
        return False
    if is_server_token(token):
        return True
    if not is_lookup_id(bot_id):
        return False
    own_token = await BRIDGE_READ.run(token_of, bot_id)
    return own_token is not None and hmac.compare_digest(token.encode(), own_token.encode())
