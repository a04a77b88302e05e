"""Wire shape of an Agent (http-api.md §2.4); the api token is never serialised."""

from __future__ import annotations

from rest_framework import serializers

from core.api import WireSerializer
from im.serializers import TimeField


class AgentSerializer(WireSerializer):
    """Optional keys are omitted when empty; `runtime` is an extension (builtin-runtime.md §2.1), last."""

    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    image = serializers.CharField(required=False)
    box_id = serializers.CharField(required=False)
    role = serializers.CharField()
    status = serializers.CharField()
    status_detail = serializers.CharField(required=False)
    created_at = TimeField()
    profile = serializers.CharField(required=False)
    provider = serializers.CharField(required=False)
    model_id = serializers.CharField(required=False)
    reasoning_effort = serializers.CharField(required=False)
    runtime = serializers.CharField(required=False)


class AgentJoinedSerializer(WireSerializer):
    """The answer of `POST /api/v1/im/agents/join` (http-api.md §6.11)."""

    message = serializers.CharField()
    room_id = serializers.CharField()
    agent_id = serializers.CharField()


class TokenRotationSerializer(WireSerializer):
    """The answer of a token rotation (security.md S2.3): which agent, and when; never the token itself."""

    id = serializers.CharField(source="agent_id")
    rotated_at = TimeField()
