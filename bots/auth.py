"""Bearer authentication of the bot routes (http-api.md §1.4): the server token, or an agent's own token."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from bots.llm_db import bridge_read
from bots.selectors import agent_api_token
from csgclaw_site.config import ServerConfig, get_config_or_default, last_loaded_config
from im.selectors import is_lookup_id

BEARER_PREFIX = "Bearer "


def presented_token(authorization: str) -> str | None:
    """The token of an exact `Bearer <token>` header (capital B, one space), else None."""
    if not authorization.startswith(BEARER_PREFIX):
        return None
    return authorization[len(BEARER_PREFIX) :]


async def bearer_allowed(
    authorization: str, *, bot_id: str, token_of: Callable[[str], str | None] = agent_api_token
) -> bool:
    """True when auth is off, the shared token matches, or the token is this bot's own agent token.

    An agent token opens only the routes of its own bot id, never another bot's. `token_of` maps the
    route's id to the token of the agent it names (routes whose ids are aliases resolve them there); it
    runs on a bridge database thread only when the shared token did not match.
    """
    server = _server_config()
    if server is not None and server.no_auth:
        return True
    token = presented_token(authorization)
    if token is None:
        return False
    if server is not None and hmac.compare_digest(token.encode(), server.access_token.encode()):
        return True
    if not is_lookup_id(bot_id):
        return False
    own_token = await bridge_read(token_of, bot_id)
    return own_token is not None and hmac.compare_digest(token.encode(), own_token.encode())


def _server_config() -> ServerConfig | None:
    """`[server]` of config.toml. While the file fails to load (an edit in progress), the last one loaded,
    else None: the defaults' well-known token must never open the bot routes, so only agents' own tokens
    are accepted then."""
    config, error = get_config_or_default()
    if error is None:
        return config.server
    last = last_loaded_config()
    return None if last is None else last.server
