"""`manage.py prune_events [--days N]`: drop events past retention (events.md §5.6)."""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from im.services import events_prune

# Longer retentions keep everything anyway; the cap keeps the cutoff inside the calendar.
MAX_RETENTION_DAYS = 1000 * 365


class Command(BaseCommand):
    help = "Delete events older than N days (default CSGCLAW_EVENT_RETENTION_DAYS) from the event log."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            default=None,
            help="retention in days, fractions allowed (default: CSGCLAW_EVENT_RETENTION_DAYS)",
        )

    def handle(self, *args, days: float | None, **options) -> None:
        retention_days = settings.CSGCLAW_EVENT_RETENTION_DAYS if days is None else days
        if not (math.isfinite(retention_days) and retention_days >= 0):
            raise CommandError("--days must be a non-negative number of days")
        cutoff = timezone.now() - timedelta(days=min(retention_days, MAX_RETENTION_DAYS))
        pruned = events_prune(older_than=cutoff)
        self.stdout.write(f"pruned {pruned} events older than {retention_days:g} days")
