"""Reads of agents."""

from __future__ import annotations

from agents.models import Agent
from core.errors import NotFound
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
