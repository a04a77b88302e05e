"""Agents (the manager and the workers, each with a model profile, an IM identity and a sandbox box) and
their bot bindings."""

import secrets

from django.db import models
from django.utils import timezone

from im.models import MAX_ID_LENGTH

NAME_MAX = 64


def new_api_token() -> str:
    """43 URL-safe characters (32 random bytes): the agent's own bearer token for its bot routes."""
    return secrets.token_urlsafe(32)


class AgentRole(models.TextChoices):
    MANAGER = "manager"
    WORKER = "worker"


class AgentStatus(models.TextChoices):
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    EXITED = "exited"
    FAILED = "failed"
    UNKNOWN = "unknown"


class AgentRuntime(models.TextChoices):
    """Which agent runtime a `local` box runs (builtin-runtime.md §2.1); blank follows [sandbox].runtime."""

    DEFAULT = "", "default ([sandbox].runtime)"
    PICOCLAW = "picoclaw", "PicoClaw"
    BUILTIN = "builtin", "built-in"


class Agent(models.Model):
    id = models.CharField(primary_key=True, max_length=MAX_ID_LENGTH)
    name = models.CharField(max_length=NAME_MAX)
    slug = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    image = models.CharField(max_length=512, blank=True, default="")
    box_id = models.CharField(max_length=255, blank=True, default="")
    role = models.CharField(max_length=16, choices=AgentRole.choices)
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.UNKNOWN)
    status_detail = models.TextField(blank=True, default="")
    profile = models.CharField(max_length=512, blank=True, default="")
    provider = models.CharField(max_length=64, blank=True, default="")
    model_id = models.CharField(max_length=512, blank=True, default="")
    reasoning_effort = models.CharField(max_length=64, blank=True, default="")
    runtime = models.CharField(max_length=16, choices=AgentRuntime.choices, blank=True, default="")
    api_token = models.CharField(max_length=64, unique=True, default=new_api_token)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class BotChannel(models.TextChoices):
    CSGCLAW = "csgclaw"
    FEISHU = "feishu"


class Bot(models.Model):
    """A bot keyed by (channel, id); one agent may back one csgclaw and one feishu bot.

    It lives with the agents because creating an agent creates its csgclaw binding; the bots app, above
    agents, reads and writes it from here. The table keeps the name it had in the bots app.
    """

    channel = models.CharField(max_length=16, choices=BotChannel.choices)
    bot_id = models.CharField("id", max_length=MAX_ID_LENGTH)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    role = models.CharField(max_length=16)
    agent_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    user_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "bots_bot"
        ordering = ["created_at", "bot_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "bot_id"], name="bots_bot_channel_id_unique")
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.bot_id}"
