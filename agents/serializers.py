"""Wire shape of an Agent (http-api.md §2.4); the api token is never serialised."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.models import Agent
from im.serializers import format_time

OPTIONAL_FIELDS_BEFORE_ROLE = ("description", "image", "box_id")
PROFILE_FIELDS = ("profile", "provider", "model_id", "reasoning_effort")
# Extension fields (builtin-runtime.md §2.1), after the upstream ones and omitted when empty.
EXTENSION_FIELDS = ("runtime",)


class AgentSerializer(serializers.BaseSerializer):
    def to_representation(self, agent: Agent) -> dict[str, Any]:
        data: dict[str, Any] = {"id": agent.id, "name": agent.name}
        data.update(
            {name: getattr(agent, name) for name in OPTIONAL_FIELDS_BEFORE_ROLE if getattr(agent, name)}
        )
        data["role"] = agent.role
        data["status"] = agent.status
        if agent.status_detail:
            data["status_detail"] = agent.status_detail
        data["created_at"] = format_time(agent.created_at)
        data.update({name: getattr(agent, name) for name in PROFILE_FIELDS if getattr(agent, name)})
        data.update({name: getattr(agent, name) for name in EXTENSION_FIELDS if getattr(agent, name)})
        return data
