"""Django admin for bot bindings: plain ORM edits that emit no events (http-api.md §10.2)."""

from django.contrib import admin
from django.http import HttpRequest

from bots.models import Bot, LlmUsage


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ("bot_id", "channel", "name", "role", "agent_id", "user_id", "created_at")
    list_filter = ("channel", "role")
    search_fields = ("bot_id", "name", "description", "agent_id", "user_id")


@admin.register(LlmUsage)
class LlmUsageAdmin(admin.ModelAdmin):
    """The LLM bridge's accounting (llm-bridge.md §8): read-only, rows are written only by the proxy."""

    list_display = (
        "created_at",
        "agent_id",
        "model",
        "provider",
        "stream",
        "status_code",
        "outcome",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "ttfb_ms",
        "latency_ms",
        "overhead_ms",
    )
    list_filter = ("agent_id", "outcome", "stream")
    search_fields = ("agent_id", "model", "provider", "error")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LlmUsage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LlmUsage | None = None) -> bool:
        return False
