"""Per-call LLM usage accounting of the LLM bridge (the bot bindings live in agents.models)."""

from django.db import models
from django.utils import timezone

from im.models import MAX_ID_LENGTH


class LlmOutcome(models.TextChoices):
    OK = "ok"
    UPSTREAM_ERROR = "upstream_error"
    CLIENT_DISCONNECTED = "client_disconnected"
    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport_error"


class LlmUsage(models.Model):
    """One chat-completions call relayed by the LLM bridge (llm-bridge.md §8).

    `agent_id` is a plain string, not a foreign key, so the accounting survives the agent's deletion.
    """

    agent_id = models.CharField(max_length=MAX_ID_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    model = models.CharField(max_length=512, blank=True, default="")
    provider = models.CharField(max_length=255, blank=True, default="")
    upstream_url = models.CharField(max_length=2048, blank=True, default="")
    stream = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=32, choices=LlmOutcome.choices)
    prompt_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    total_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    ttfb_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    overhead_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent_id", "created_at"], name="bots_llmusage_agent_created")]
        verbose_name = "LLM usage"
        verbose_name_plural = "LLM usage"

    def __str__(self) -> str:
        return f"{self.agent_id} {self.model} {self.outcome}"
