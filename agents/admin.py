"""Django admin for agents and their bot bindings: plain ORM edits that emit no events (http-api.md §10.2),
plus start/stop actions that go through the box lifecycle."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from agents import lifecycle
from agents.models import Agent, Bot
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
    readonly_fields = ("slug", "api_token", "created_at", "updated_at")
    actions = ("start_agents", "stop_agents")

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


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ("bot_id", "channel", "name", "role", "agent_id", "user_id", "created_at")
    list_filter = ("channel", "role")
    search_fields = ("bot_id", "name", "description", "agent_id", "user_id")
