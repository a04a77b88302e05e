"""The bots app: the bot bridge (event streams, send, LLM proxy), bot bindings and usage accounting."""

from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    default_auto_field = "django.db.models.BigAutoField"
