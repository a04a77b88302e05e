"""Rows the agents tests start from, and reading them back."""

from __future__ import annotations

from agents.models import Agent, AgentRole, AgentStatus


def make_worker(
    agent_id: str = "u-alice",
    *,
    name: str = "Alice",
    status: str = AgentStatus.CREATING,
    model_id: str = "",
    runtime: str = "",
) -> Agent:
    return Agent.objects.create(
        id=agent_id,
        name=name,
        slug=name.lower(),
        role=AgentRole.WORKER,
        status=status,
        model_id=model_id,
        runtime=runtime,
    )


def reload(agent_id: str = "u-alice") -> Agent:
    return Agent.objects.get(pk=agent_id)
