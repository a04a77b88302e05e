"""Alias ids in mention tags (participants.md §1.4): `<at user_id="pt-alice">` is stored as the user's id.

Resolution happens here, in `im`, rather than through a resolver injected by `bots`: every message-create
path (REST, bot send, participant send) ends in `im.services.message_post`, and an injected resolver would
have to be threaded through each caller or registered globally. What §1.3 steps 1–4 need, `im` already
knows: an agent's id is its IM user's id and its slug is that user's handle, so the agents are the IM users
with role manager or worker, in the agents' order (created_at, id).
"""

from __future__ import annotations

import re

from core.ids import strip_participant_id
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, UserRole
from im.selectors import existing_user_ids, is_lookup_id

ADMIN_ALIASES = frozenset({"admin", ADMIN_ID, "user-admin", "pt-admin"})
MANAGER_ALIASES = frozenset({"manager", MANAGER_ID, "user-manager", "pt-manager", "agent-manager"})

_AT_OPEN = re.compile(r'<at user_id="([^"]+)">')


def _agent_user_for(alias: str, agent_users: list[ChatUser]) -> str | None:
    """§1.3 steps 2 and 4 over the agents' IM users (step 3, an exact id, is an existing user)."""
    ids = {user.id for user in agent_users}
    if alias in MANAGER_ALIASES and MANAGER_ID in ids:
        return MANAGER_ID
    stripped = strip_participant_id(alias)
    if not stripped:
        return None
    for candidate in (f"u-{stripped}", f"agent-{stripped}", stripped):
        if candidate in ids:
            return candidate
    lowered = stripped.lower()
    for user in agent_users:
        if strip_participant_id(user.id).lower() == lowered:
            return user.id
    return next((user.id for user in agent_users if user.handle == lowered), None)


def alias_user_ids(tag_ids: list[str]) -> dict[str, str]:
    """Each tag id that is not a user id but names one through an alias → that user's id."""
    candidates = [tag_id for tag_id in dict.fromkeys(tag_ids) if is_lookup_id(tag_id)]
    known = existing_user_ids(candidates)
    aliases = [tag_id for tag_id in candidates if tag_id not in known]
    if not aliases:
        return {}
    resolved: dict[str, str] = {}
    agent_users: list[ChatUser] | None = None
    for alias in aliases:
        if alias in ADMIN_ALIASES:
            if existing_user_ids([ADMIN_ID]):
                resolved[alias] = ADMIN_ID
            continue
        if agent_users is None:
            agent_users = list(
                ChatUser.objects.exclude(role=UserRole.ADMIN)
                .order_by("created_at", "id")
                .only("id", "handle")
            )
        user_id = _agent_user_for(alias, agent_users)
        if user_id is not None:
            resolved[alias] = user_id
    return resolved


def rewrite_alias_tags(content: str) -> str:
    """`content` with every resolvable alias tag rewritten to the user's id; other tags kept verbatim."""
    tag_ids = _AT_OPEN.findall(content)
    if not tag_ids:
        return content
    resolved = alias_user_ids(tag_ids)
    if not resolved:
        return content
    return _AT_OPEN.sub(
        lambda match: f'<at user_id="{resolved.get(match.group(1), match.group(1))}">', content
    )
