"""The server process: start-up, runserver, serve, onboard, bootstrap_manager and the site guards."""

from django.apps import AppConfig


class ServerAppConfig(AppConfig):
    name = "server"
