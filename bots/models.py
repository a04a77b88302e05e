"""Bot bindings (an agent on a channel) and per-call LLM usage accounting."""

from django.db import models
from django.utils import timezone

from im.models import MAX_ID_LENGTH


class BotChannel(models.TextChoices):
    CSGCLAW = "csgclaw"
    FEISHU = "feishu"


class Bot(models.Model):
    """A bot keyed by (channel, id); one agent may back one csgclaw and one feishu bot."""

    channel = models.CharField(max_length=16, choices=BotChannel.choices)
    bot_id = models.CharField("id", max_length=MAX_ID_LENGTH)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    role = models.CharField(max_length=16)
    agent_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    user_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "bot_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "bot_id"], name="bots_bot_channel_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.bot_id}"
