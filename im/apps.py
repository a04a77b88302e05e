"""The IM app: its first-run seed runs after every migrate (and flush), so every database has it."""

import os

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _private_sqlite_file(sender, connection, **kwargs) -> None:
    """The embedded database holds every message: keep it readable by its owner only (0600)."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    path = connection.settings_dict["NAME"]
    if os.path.exists(path) and os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


def _seed_after_migrate(sender, using, **kwargs) -> None:
    from im.services import seed_ensure

    seed_ensure()


class ImConfig(AppConfig):
    name = "im"
    verbose_name = "Built-in IM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_seed_after_migrate, sender=self, dispatch_uid="im-seed")
        connection_created.connect(_private_sqlite_file, dispatch_uid="im-private-sqlite-file")
