"""The IM app: its first-run seed runs after every migrate (and flush), so every database has it."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_after_migrate(sender, using, **kwargs) -> None:
    from im.services import seed_ensure

    seed_ensure()


class ImConfig(AppConfig):
    name = "im"
    verbose_name = "Built-in IM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_seed_after_migrate, sender=self, dispatch_uid="im-seed")
