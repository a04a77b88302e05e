"""The agents app: agents, model profiles, the sandbox lifecycle, and the server's management commands."""

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    default_auto_field = "django.db.models.BigAutoField"
