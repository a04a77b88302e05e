"""Django admin of the bot bridge: LLM usage rows, and an agent's usage totals on the agent's admin page."""

from django.contrib import admin
from django.http import HttpRequest

from agents.admin import AgentAdmin
from agents.models import Agent
from bots.models import LlmUsage
from bots.selectors import llm_usage_totals


class AgentWithUsageAdmin(AgentAdmin):
    """The agents app's admin page of an agent, with what the LLM bridge counted for it (llm-bridge.md §8).

    Registered in place of agents' own page: usage is bots' data, and agents may not import bots.
    """

    readonly_fields = (*AgentAdmin.readonly_fields, "llm_usage")

    @admin.display(description="LLM usage")
    def llm_usage(self, agent: Agent) -> str:
        if agent._state.adding:
            return "-"
        totals = llm_usage_totals(agent.id)
        return (
            f"{totals.calls} calls; tokens: {totals.prompt_tokens} prompt, "
            f"{totals.completion_tokens} completion, {totals.total_tokens} total"
        )


admin.site.unregister(Agent)
admin.site.register(Agent, AgentWithUsageAdmin)


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
