"""Wire shape of a Bot (http-api.md §2.5), field for field and in the contract's key order."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.models import Bot
from im.serializers import format_time

# Go's zero time.Time as upstream renders it: the created_at of a Feishu bot that exists only in config.
ZERO_TIME = "0001-01-01T00:00:00Z"


class BotSerializer(serializers.BaseSerializer):
    """Serialises a Bot that carries `available` (set by the bot selectors and services)."""

    def to_representation(self, bot: Bot) -> dict[str, Any]:
        data: dict[str, Any] = {"id": bot.bot_id, "name": bot.name}
        if bot.description:
            data["description"] = bot.description
        data.update(
            {
                "role": bot.role,
                "channel": bot.channel,
                "agent_id": bot.agent_id,
                "user_id": bot.user_id,
                "available": bool(bot.available),
                "created_at": format_time(bot.created_at) if bot.created_at else ZERO_TIME,
            }
        )
        return data
