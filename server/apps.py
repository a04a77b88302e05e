"""The server process: start-up checks, the runserver, serve, onboard and bootstrap_manager commands."""

from django.apps import AppConfig


class ServerAppConfig(AppConfig):
    name = "server"
