"""The agents app: agents, model profiles, the sandbox lifecycle, and which credential a bearer token is."""

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    default_auto_field = "django.db.models.BigAutoField"
