"""Retention of the durable event log: pruning its oldest prefix (events.md §5.6)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max

from im.models import Event, EventLogState


@transaction.atomic
def events_prune(*, older_than: datetime) -> int:
    """Delete the log through its newest event created before `older_than`; returns how many went.

    Always a prefix of the log, so that every seq up to `pruned_through` is gone and a cursor below it is
    known to have missed events (events.md §5.6). Recipients go with their events (cascade).
    """
    through = Event.objects.filter(created_at__lt=older_than).aggregate(through=Max("seq"))["through"]
    if through is None:
        return 0
    _, deleted_by_model = Event.objects.filter(seq__lte=through).delete()
    state = EventLogState.objects.select_for_update().order_by("pk").first() or EventLogState()
    state.pruned_through = max(state.pruned_through, through)
    state.save()
    return deleted_by_model.get(Event._meta.label, 0)
