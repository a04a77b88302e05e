"""Reads of the durable event log for streams: rows after a cursor, newest seq, prune mark, msg-id → seq."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Max
from django.db.models.functions import Coalesce

from im.events import MESSAGE_CREATED
from im.models import Event, EventLogState, EventRecipient, EventStream
from im.selectors import is_lookup_id


@dataclass(frozen=True)
class EventSelection:
    """Which log rows one stream sends: a log stream, optionally only one recipient's rows and some types."""

    stream: str = EventStream.IM
    recipient_id: str | None = None
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggedEvent:
    """One row as a stream renders it; `mentioned` is the selected recipient's flag (False without one)."""

    seq: int
    payload: dict[str, Any]
    bot_payload: dict[str, Any] | None
    mentioned: bool = False


def event_list_after(selection: EventSelection, *, cursor: int, limit: int) -> list[LoggedEvent]:
    """Up to `limit` selected rows with `seq > cursor`, in seq order."""
    if selection.recipient_id is None:
        events = Event.objects.filter(stream=selection.stream, seq__gt=cursor)
        if selection.types:
            events = events.filter(type__in=selection.types)
        rows = events.order_by("seq").values_list("seq", "payload", "bot_payload")[:limit]
        return [LoggedEvent(seq, payload, bot_payload) for seq, payload, bot_payload in rows]
    if not is_lookup_id(selection.recipient_id):
        return []
    # Walks the (recipient_id, event) index instead of scanning every event of the stream.
    deliveries = EventRecipient.objects.filter(
        recipient_id=selection.recipient_id, event_id__gt=cursor, event__stream=selection.stream
    )
    if selection.types:
        deliveries = deliveries.filter(event__type__in=selection.types)
    rows = deliveries.order_by("event_id").values_list(
        "event_id", "event__payload", "event__bot_payload", "mentioned"
    )[:limit]
    return [LoggedEvent(*row) for row in rows]


def event_pruned_through() -> int:
    return EventLogState.objects.aggregate(pruned=Coalesce(Max("pruned_through"), 0))["pruned"]


def event_newest_seq() -> int:
    """max(max(Event.seq), pruned_through): survives pruning every event (events.md §5.1)."""
    newest = Event.objects.aggregate(newest=Coalesce(Max("seq"), 0))["newest"]
    return max(newest, event_pruned_through())


def event_seq_of_message(*, stream: str, message_id: str) -> int | None:
    """The seq of the `message.created` event of a message, for clients that resume by message id."""
    if not is_lookup_id(message_id):
        return None
    return (
        Event.objects.filter(stream=stream, type=MESSAGE_CREATED, message_id=message_id)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
