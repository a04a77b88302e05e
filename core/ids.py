"""Ids every layer agrees on: the two fixed IM users and the participant ids of participants.md §1.2."""

from __future__ import annotations

ADMIN_ID = "u-admin"
MANAGER_ID = "u-manager"
ADMIN_PARTICIPANT_ID = "pt-admin"
MANAGER_PARTICIPANT_ID = "pt-manager"
PARTICIPANT_PREFIX = "pt-"

# Order matters: `strip` tries them in this order on every round.
_STRIP_PREFIXES = ("user-", "agent-", "pt-", "u-")


def strip_participant_id(value: str) -> str:
    """`strip(x)`: trim, then drop one known prefix per round until none is left (`u-agent-bob` → `bob`)."""
    value = value.strip()
    while True:
        prefix = next((p for p in _STRIP_PREFIXES if value.startswith(p)), None)
        if prefix is None:
            return value
        value = value[len(prefix) :]


def participant_id_of(user_or_agent_id: str) -> str:
    """The participant id of a user or agent id; case is preserved (`u-Alice` → `pt-Alice`)."""
    if user_or_agent_id == ADMIN_ID:
        return ADMIN_PARTICIPANT_ID
    if user_or_agent_id == MANAGER_ID:
        return MANAGER_PARTICIPANT_ID
    return PARTICIPANT_PREFIX + strip_participant_id(user_or_agent_id)
