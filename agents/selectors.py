"""Reads of agents, and of the agent an alias names (participants.md §1.3)."""

from __future__ import annotations

from agents.models import Agent, AgentRole, Bot
from core.errors import NotFound
from core.ids import strip_participant_id
from im.aliases import ADMIN_ALIASES, MANAGER_ALIASES
from im.identity import MANAGER_ID
from im.selectors import is_lookup_id


def agent_find(agent_id: str) -> Agent | None:
    if not is_lookup_id(agent_id):
        return None
    # get(), not first(): a primary-key lookup needs no ORDER BY.
    try:
        return Agent.objects.get(pk=agent_id)
    except Agent.DoesNotExist:
        return None


def agent_get(agent_id: str) -> Agent:
    agent = agent_find(agent_id)
    if agent is None:
        raise NotFound("agent not found")
    return agent


def agent_list() -> list[Agent]:
    return list(Agent.objects.order_by("created_at", "id"))


def _manager_agent() -> Agent | None:
    return (
        agent_find(MANAGER_ID)
        or Agent.objects.filter(role=AgentRole.MANAGER).order_by("created_at", "id").first()
    )


def _agent_by_stripped(stripped: str) -> Agent | None:
    """§1.3 step 4: exact prefixed ids first, then case-insensitive stripped ids, then the slug."""
    candidates = (f"u-{stripped}", f"agent-{stripped}", stripped)
    exact = {agent.id: agent for agent in Agent.objects.filter(id__in=candidates)}
    for candidate in candidates:
        if candidate in exact:
            return exact[candidate]
    lowered = stripped.lower()
    agents = agent_list()
    for agent in agents:
        if strip_participant_id(agent.id).lower() == lowered:
            return agent
    return next((agent for agent in agents if agent.slug == lowered), None)


def agent_resolve(path_id: str) -> Agent | None:
    """The agent a path id names by §1.3 (`pt-alice`, `agent-Alice`, `alice`, `manager`, or its own id).

    None for the admin's aliases (step 1 wins over the agents), an empty or over-long id, and an id that
    names nobody. An id that is an agent's own costs one primary-key read; only the other aliases of step 4
    read the whole agent list.
    """
    path_id = path_id.strip()
    if not is_lookup_id(path_id) or path_id in ADMIN_ALIASES:
        return None
    if path_id in MANAGER_ALIASES:
        manager = _manager_agent()
        if manager is not None:
            return manager
    exact = agent_find(path_id)
    if exact is not None:
        return exact
    stripped = strip_participant_id(path_id)
    return _agent_by_stripped(stripped) if stripped else None


def agent_id_resolve(agent_id: str) -> str:
    """A REST agent id (path or body): the id of the agent it names by alias, else itself as given, so that
    an unknown id keeps its usual "not found" answer."""
    agent = agent_resolve(agent_id)
    return agent.id if agent is not None else agent_id


def bot_id_resolve(bot_id: str) -> str:
    """A bot path id: itself when some bot has that id; else the id of the agent it names by alias when that
    agent has a bot (a csgclaw bot's id is its agent's id); else itself, for the usual 404 with the id as
    given."""
    if not is_lookup_id(bot_id) or Bot.objects.filter(bot_id=bot_id).exists():
        return bot_id
    agent = agent_resolve(bot_id)
    if agent is not None and Bot.objects.filter(bot_id=agent.id).exists():
        return agent.id
    return bot_id
