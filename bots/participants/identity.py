"""Participant ids (participants.md §1): derived from user and agent ids, resolved from URL path ids."""

from __future__ import annotations

from dataclasses import dataclass

from agents.selectors import agent_resolve
from core.ids import ADMIN_PARTICIPANT_ID, PARTICIPANT_PREFIX, participant_id_of, strip_participant_id
from im.aliases import ADMIN_ALIASES
from im.identity import ADMIN_ID

__all__ = [
    "ParticipantRef",
    "participant_agent_id",
    "participant_agent_token",
    "participant_id_of",
    "participant_resolve",
    "strip_participant_id",
]


@dataclass(frozen=True)
class ParticipantRef:
    """A resolved path id: `user_id` is "" when unresolved, `agent_id` is "" for the admin or unresolved."""

    participant_id: str
    user_id: str = ""
    agent_id: str = ""
    is_admin: bool = False

    @property
    def resolved(self) -> bool:
        return bool(self.user_id)


def participant_agent_id(path_id: str) -> str | None:
    """The agent a path id names (§1.3 steps 2–4), or None for the admin and unresolved ids."""
    agent = agent_resolve(path_id)
    return agent.id if agent is not None else None


def participant_resolve(path_id: str) -> ParticipantRef:
    """Resolve a path `{id}` (§1.3): admin, an agent, or an unresolved participant with no IM user."""
    path_id = path_id.strip()
    if path_id in ADMIN_ALIASES:
        return ParticipantRef(participant_id=ADMIN_PARTICIPANT_ID, user_id=ADMIN_ID, is_admin=True)
    agent = agent_resolve(path_id)
    if agent is not None:
        return ParticipantRef(participant_id=participant_id_of(agent.id), user_id=agent.id, agent_id=agent.id)
    if path_id.startswith(PARTICIPANT_PREFIX):
        return ParticipantRef(participant_id=path_id)
    return ParticipantRef(participant_id=PARTICIPANT_PREFIX + strip_participant_id(path_id))


def participant_agent_token(path_id: str) -> str | None:
    """The own bearer token of the agent a path id names (http-api.md §1.4 rule 3 on participant routes)."""
    agent = agent_resolve(path_id)
    return agent.api_token if agent is not None else None
