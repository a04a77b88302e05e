"""Wire shape of a Bot (http-api.md §2.5), field for field and in the contract's key order."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import Bot
from core.api import WireSerializer
from core.times import ZERO_TIME, format_time


class BotSerializer(WireSerializer):
    """Serialises a Bot that carries `available` (set by the bot selectors and services)."""

    id = serializers.CharField(source="bot_id")
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    role = serializers.CharField()
    channel = serializers.CharField()
    agent_id = serializers.CharField()
    user_id = serializers.CharField()
    available = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()

    def get_available(self, bot: Bot) -> bool:
        return bool(bot.available)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_created_at(self, bot: Bot) -> str:
        return format_time(bot.created_at) if bot.created_at else ZERO_TIME
