"""Participant ids (participants.md §1): derived from user and agent ids, resolved from URL path ids."""

from __future__ import annotations

from dataclasses import dataclass

from agents.models import Agent, AgentRole
from core.ids import ADMIN_PARTICIPANT_ID, PARTICIPANT_PREFIX, participant_id_of, strip_participant_id
from im.aliases import ADMIN_ALIASES, MANAGER_ALIASES
from im.identity import ADMIN_ID, MANAGER_ID

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


def _manager_agent() -> Agent | None:
    return Agent.objects.filter(id=MANAGER_ID).first() or Agent.objects.filter(role=AgentRole.MANAGER).first()


def _agent_by_stripped(stripped: str) -> Agent | None:
    """§1.3 step 4: exact prefixed ids first, then case-insensitive stripped ids, then the slug."""
    exact = {
        agent.id: agent
        for agent in Agent.objects.filter(id__in=[f"u-{stripped}", f"agent-{stripped}", stripped])
    }
    for candidate in (f"u-{stripped}", f"agent-{stripped}", stripped):
        if candidate in exact:
            return exact[candidate]
    lowered = stripped.lower()
    agents = list(Agent.objects.order_by("created_at", "id"))
    for agent in agents:
        if strip_participant_id(agent.id).lower() == lowered:
            return agent
    return next((agent for agent in agents if agent.slug == lowered), None)


def _resolve_agent(path_id: str) -> Agent | None:
    """§1.3 steps 2–4 for an already trimmed, non-admin path id."""
    if path_id in MANAGER_ALIASES:
        manager = _manager_agent()
        if manager is not None:
            return manager
    exact = Agent.objects.filter(id=path_id).first()
    if exact is not None:
        return exact
    stripped = strip_participant_id(path_id)
    return _agent_by_stripped(stripped) if stripped else None


def participant_agent_id(path_id: str) -> str | None:
    """The agent a path id names (§1.3 steps 2–4), or None for the admin and unresolved ids."""
    path_id = path_id.strip()
    if not path_id or path_id in ADMIN_ALIASES:
        return None
    agent = _resolve_agent(path_id)
    return agent.id if agent is not None else None


def participant_resolve(path_id: str) -> ParticipantRef:
    """Resolve a path `{id}` (§1.3): admin, an agent, or an unresolved participant with no IM user."""
    path_id = path_id.strip()
    if path_id in ADMIN_ALIASES:
        return ParticipantRef(participant_id=ADMIN_PARTICIPANT_ID, user_id=ADMIN_ID, is_admin=True)
    agent = _resolve_agent(path_id) if path_id else None
    if agent is not None:
        return ParticipantRef(participant_id=participant_id_of(agent.id), user_id=agent.id, agent_id=agent.id)
    if path_id.startswith(PARTICIPANT_PREFIX):
        return ParticipantRef(participant_id=path_id)
    return ParticipantRef(participant_id=PARTICIPANT_PREFIX + strip_participant_id(path_id))


def participant_agent_token(path_id: str) -> str | None:
    """The own bearer token of the agent a path id names (http-api.md §1.4 rule 3 on participant routes)."""
    agent_id = participant_agent_id(path_id)
    if agent_id is None:
        return None
    return Agent.objects.filter(pk=agent_id).values_list("api_token", flat=True).first()
