"""Django admin for agents: plain ORM edits, plus start/stop actions that go through the box lifecycle."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from agents import lifecycle
from agents.models import Agent
from bots.selectors import llm_usage_totals
from core.errors import DomainError


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "role",
        "status",
        "status_detail",
        "profile",
        "runtime",
        "box_id",
        "created_at",
    )
    list_filter = ("role", "status", "runtime")
    search_fields = ("id", "name", "slug", "description", "box_id", "profile", "model_id")
    # The slug names the box and the agent directory; editing it would orphan both.
    readonly_fields = ("slug", "api_token", "created_at", "updated_at", "llm_usage")
    actions = ("start_agents", "stop_agents")

    @admin.display(description="LLM usage")
    def llm_usage(self, agent: Agent) -> str:
        """Calls and token sums through the LLM bridge (llm-bridge.md §8); agents' only read of bots."""
        if agent._state.adding:
            return "-"
        totals = llm_usage_totals(agent.id)
        return (
            f"{totals.calls} calls; tokens: {totals.prompt_tokens} prompt, "
            f"{totals.completion_tokens} completion, {totals.total_tokens} total"
        )

    @admin.action(description="Start the selected agents' boxes")
    def start_agents(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        for agent in queryset:
            try:
                started, queued = lifecycle.agent_start(agent_id=agent.id)
            except DomainError as exc:
                self.message_user(request, f"{agent.id}: {exc.message}", messages.ERROR)
                continue
            outcome = "box provisioning queued" if queued else f"status {started.status}"
            self.message_user(request, f"{agent.id}: {outcome}", messages.SUCCESS)

    @admin.action(description="Stop the selected agents' boxes")
    def stop_agents(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        for agent in queryset:
            try:
                stopped = lifecycle.agent_stop(agent_id=agent.id)
            except DomainError as exc:
                self.message_user(request, f"{agent.id}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{agent.id}: status {stopped.status}", messages.SUCCESS)
