"""Bot binding writes that the agents app needs (kept apart from bots.services, which depends on agents)."""

from __future__ import annotations

from django.db import transaction

from bots.models import Bot, BotChannel


@transaction.atomic
def binding_upsert(
    *,
    bot_id: str,
    name: str,
    role: str,
    agent_id: str,
    user_id: str,
    channel: str = BotChannel.CSGCLAW,
    description: str | None = None,
) -> Bot:
    """Create or refresh the (channel, id) binding; `description=None` keeps the stored one."""
    defaults = {"name": name, "role": role, "agent_id": agent_id, "user_id": user_id}
    if description is not None:
        defaults["description"] = description
    bot, _ = Bot.objects.update_or_create(channel=channel, bot_id=bot_id, defaults=defaults)
    return bot


@transaction.atomic
def bindings_delete_for_agent(*, agent_id: str) -> int:
    deleted, _ = Bot.objects.filter(agent_id=agent_id).delete()
    return deleted
