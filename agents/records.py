"""Writes of an agent's own row that the box lifecycle needs: its status and the manager record.

They live below both `agents.services` (the writes callers use) and `agents.lifecycle` (the box
operations those writes call), so that imports run one way: services -> lifecycle -> records.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from agents.models import Agent, AgentRole, Bot, BotChannel
from agents.serializers import AgentSerializer
from core.config import Config, ConfigError, ResolvedModel, resolve_model
from im import events
from im.identity import MANAGER_ID

MANAGER_NAME = "manager"


@dataclass(frozen=True)
class ProfileSnapshot:
    """The resolved model fields stored on an agent when it is created or re-ensured."""

    profile: str = ""
    provider: str = ""
    model_id: str = ""
    reasoning_effort: str = ""

    @classmethod
    def of(cls, resolved: ResolvedModel) -> ProfileSnapshot:
        return cls(resolved.selector, resolved.provider_type, resolved.model_id, resolved.reasoning_effort)

    def apply_to(self, agent: Agent) -> None:
        agent.profile, agent.provider = self.profile, self.provider
        agent.model_id, agent.reasoning_effort = self.model_id, self.reasoning_effort


def default_profile(config: Config) -> ProfileSnapshot:
    """The default model's snapshot, or an empty one while [models] cannot resolve a default."""
    try:
        return ProfileSnapshot.of(resolve_model(config))
    except ConfigError:
        return ProfileSnapshot()


def emit_agent_updated(agent: Agent, *, status: str | None = None) -> None:
    payload = AgentSerializer(agent).data
    if status is not None:
        payload["status"] = status
    events.event_append(type=events.AGENT_UPDATED, payload={"agent": payload})


@transaction.atomic
def manager_ensure(*, config: Config, status: str = "", status_detail: str = "") -> Agent:
    """The manager agent row (`u-manager`) and its csgclaw bot binding; idempotent.

    Image and profile follow the current config; `status`/`status_detail`, when given, are recorded.
    The binding is only created when missing: its name is the one a bot request gave it (http-api.md
    §2.5, §7.2), `manager` only when this call creates it.
    """
    agent = Agent.objects.select_for_update().filter(pk=MANAGER_ID).first()
    before = AgentSerializer(agent).data if agent is not None else None
    if agent is None:
        agent = Agent(id=MANAGER_ID, name=MANAGER_NAME, slug=MANAGER_NAME, role=AgentRole.MANAGER)
    agent.image = config.bootstrap.manager_image
    default_profile(config).apply_to(agent)
    if status:
        agent.status, agent.status_detail = status, status_detail
    agent.save()
    Bot.objects.get_or_create(
        channel=BotChannel.CSGCLAW,
        bot_id=MANAGER_ID,
        defaults={
            "name": MANAGER_NAME,
            "role": AgentRole.MANAGER,
            "agent_id": MANAGER_ID,
            "user_id": MANAGER_ID,
        },
    )
    if AgentSerializer(agent).data != before:
        emit_agent_updated(agent)
    return agent


@transaction.atomic
def agent_status_record(
    *, agent_id: str, status: str, status_detail: str = "", box_id: str | None = None
) -> Agent | None:
    """Save a box status change and announce it; None when the agent was deleted meanwhile."""
    agent = Agent.objects.select_for_update().filter(pk=agent_id).first()
    if agent is not None:
        _status_save(agent, status=status, status_detail=status_detail, box_id=box_id)
    return agent


def agent_observation_record(*, seen: Agent, status: str, status_detail: str, box_id: str | None) -> None:
    """Save and announce what a status probe saw of `seen`, unless the row changed since it was read.

    A start, a stop or another probe recorded meanwhile is newer than this observation, and wins.
    """
    stored = {"status": status, "status_detail": status_detail}
    if box_id is not None:
        stored["box_id"] = box_id
    unchanged = Agent.objects.filter(pk=seen.pk, updated_at=seen.updated_at)
    # Most probes find what is stored already; reading first spares them a write transaction.
    if not unchanged.exclude(**stored).exists():
        return
    with transaction.atomic():
        agent = unchanged.select_for_update().first()
        if agent is not None:
            _status_save(agent, status=status, status_detail=status_detail, box_id=box_id)


def _status_save(agent: Agent, *, status: str, status_detail: str, box_id: str | None) -> None:
    changed = (agent.status, agent.status_detail) != (status, status_detail)
    agent.status, agent.status_detail = status, status_detail
    if box_id is not None and box_id != agent.box_id:
        agent.box_id, changed = box_id, True
    if changed:
        agent.save(update_fields=["status", "status_detail", "box_id", "updated_at"])
        emit_agent_updated(agent)
