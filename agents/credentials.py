"""Which credential a bearer token is (security.md S1, S2): `credential_kind(token)` → server, agent or None.

The one place that decides whether a presented token is the server token or some agent's own token.
Import from here: `agents.credentials.credential_kind` (sync: may read the database on a cache miss),
`acredential_kind` (the same from async code: a hit costs no thread hop), `credential_agent_id` (whose
token it is), `bearer_token` (the token of an `Authorization` header), `auth_disabled`
(`[server].no_auth`, which callers respect themselves: S2 and S4 are off then) and `forget_agent_tokens`
(call after an agent's token changes or the agent goes away).

The public placeholder `your_access_token` is never a credential, whatever config.toml says (S1.2), and
while config.toml cannot be loaded only the server token of the last loaded config counts (S1.3).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Literal

from agents.models import Agent
from core.config import (
    DEFAULT_ACCESS_TOKEN,
    ServerConfig,
    get_config_or_default,
    last_loaded_config,
)
from core.db.threads import CREDENTIALS

CredentialKind = Literal["server", "agent"]

BEARER_PREFIX = "Bearer "
PLACEHOLDER_TOKEN = DEFAULT_ACCESS_TOKEN
PLACEHOLDER_WARNING = (
    "[server].access_token is the public placeholder; "
    "bot routes accept only agents' own tokens until you set one"
)

# A box repeats its token on every stream reconnect, send and LLM call; a hit saves a database read. The
# process that changes a token clears the cache on commit, so there the old token stops at once; another
# server process on the same database stops accepting it within this many seconds.
AGENT_TOKEN_TTL = 2.0
# Only real agent tokens are cached, so this bounds only a pathological number of agents or rotations.
_CACHE_MAX = 4096

_cache: dict[bytes, tuple[str, float]] = {}
_cache_lock = threading.Lock()


def bearer_token(authorization: str) -> str | None:
    """The token of an exact `Bearer <token>` header (capital B, one space: http-api.md §1.4), else None."""
    if not authorization.startswith(BEARER_PREFIX):
        return None
    return authorization[len(BEARER_PREFIX) :]


def server_config() -> ServerConfig | None:
    """`[server]` of config.toml. While the file fails to load (an edit in progress), the last one loaded,
    else None: the defaults' token must never become valid because the file broke (S1.3)."""
    config, error = get_config_or_default()
    if error is None:
        return config.server
    last = last_loaded_config()
    return None if last is None else last.server


def auth_disabled() -> bool:
    """`[server].no_auth = true`: S2 and S4 are off and every bearer check passes (security.md)."""
    server = server_config()
    return server is not None and server.no_auth


def is_server_token(token: str | None) -> bool:
    """The server's `[server].access_token`, never the placeholder. Needs no database."""
    if not _usable(token):
        return False
    server = server_config()
    if server is None or not _usable(server.access_token):
        return False
    return hmac.compare_digest(token.encode(), server.access_token.encode())


def credential_agent_id(token: str | None) -> str | None:
    """The id of the agent whose own token this is, else None. Sync: reads the database on a cache miss."""
    if not _usable(token):
        return None
    key = _key(token)
    cached = _cached(key)
    if cached is not None:
        return cached
    agent_id = _agent_id_from_database(token)
    if agent_id is not None:
        _remember(key, agent_id)
    return agent_id


def credential_kind(token: str | None) -> CredentialKind | None:
    """ "server" for the server token, "agent" for any agent's own token, None for anything else."""
    if is_server_token(token):
        return "server"
    return "agent" if credential_agent_id(token) is not None else None


async def acredential_kind(token: str | None) -> CredentialKind | None:
    """`credential_kind` for async callers: the server token and cached agent tokens answer on the loop."""
    if is_server_token(token):
        return "server"
    if not _usable(token):
        return None
    if _cached(_key(token)) is not None:
        return "agent"
    return "agent" if await CREDENTIALS.run(credential_agent_id, token) is not None else None


def forget_agent_tokens() -> None:
    """Drop every cached agent token: after a rotation or a delete the old token must fail at once."""
    with _cache_lock:
        _cache.clear()


def _usable(token: str | None) -> bool:
    return bool(token) and token != PLACEHOLDER_TOKEN


def _key(token: str) -> bytes:
    # Cache keys are digests, so looking one up reveals nothing about how much of a token was right.
    return hashlib.sha256(token.encode()).digest()


def _cached(key: bytes) -> str | None:
    entry = _cache.get(key)
    if entry is None:
        return None
    agent_id, expires_at = entry
    if time.monotonic() >= expires_at:
        with _cache_lock:
            _cache.pop(key, None)
        return None
    return agent_id


def _remember(key: bytes, agent_id: str) -> None:
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (agent_id, time.monotonic() + AGENT_TOKEN_TTL)


def _agent_id_from_database(token: str) -> str | None:
    try:
        # api_token is unique; get() needs no ORDER BY.
        agent_id, stored = Agent.objects.values_list("id", "api_token").get(api_token=token)
    except Agent.DoesNotExist:
        return None
    # The index found the row; the comparison that decides is the constant-time one, and exact (a
    # case-insensitive collation must not let a differently cased token in).
    return agent_id if hmac.compare_digest(token.encode(), stored.encode()) else None
