"""Reads of the durable event log for streams: rows after a cursor, newest seq, prune mark, msg-id → seq.

Streams run these reads off the event loop on core.db.threads' STREAM_READ pool (events.md §5.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.db.models import Max
from django.db.models.functions import Coalesce, Length

from im.events import MESSAGE_CREATED
from im.models import Event, EventLogState, EventRecipient, EventStream
from im.selectors import is_lookup_id

_NO_RECIPIENTS: Mapping[str, bool] = MappingProxyType({})


@dataclass(frozen=True)
class LoggedEvent:
    """One row as a stream renders it; `mentioned` is the selected recipient's flag (False without one)."""

    seq: int
    payload: dict[str, Any]
    bot_payload: dict[str, Any] | None
    mentioned: bool = False
    participant_payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class LogRow:
    """One row of any log stream with its recipients: enough to answer every selection without a query.

    Streams share these objects, so nothing may modify a payload (feeds copy before they add keys).
    """

    seq: int
    stream: str
    type: str
    payload: dict[str, Any]
    bot_payload: dict[str, Any] | None
    participant_payload: dict[str, Any] | None
    recipients: Mapping[str, bool]
    # Characters of the stored JSON: what bounds the memory of the tail that keeps the row.
    size: int


@dataclass(frozen=True)
class EventSelection:
    """Which log rows one stream sends: a log stream, optionally only one recipient's rows and some types."""

    stream: str = EventStream.IM
    recipient_id: str | None = None
    types: tuple[str, ...] = ()

    def pick(self, row: LogRow) -> LoggedEvent | None:
        """`row` as this selection's stream renders it, or None when `event_list_after` would skip it."""
        if row.stream != self.stream or (self.types and row.type not in self.types):
            return None
        if self.recipient_id is None:
            return LoggedEvent(row.seq, row.payload, row.bot_payload, False, row.participant_payload)
        if not is_lookup_id(self.recipient_id):
            return None
        mentioned = row.recipients.get(self.recipient_id)
        if mentioned is None:
            return None
        return LoggedEvent(row.seq, row.payload, row.bot_payload, mentioned, row.participant_payload)


def event_list_after(selection: EventSelection, *, cursor: int, limit: int) -> list[LoggedEvent]:
    """Up to `limit` selected rows with `seq > cursor`, in seq order."""
    if selection.recipient_id is None:
        events = Event.objects.filter(stream=selection.stream, seq__gt=cursor)
        if selection.types:
            events = events.filter(type__in=selection.types)
        rows = events.order_by("seq").values_list("seq", "payload", "bot_payload", "participant_payload")[
            :limit
        ]
        return [
            LoggedEvent(seq, payload, bot_payload, False, participant_payload)
            for seq, payload, bot_payload, participant_payload in rows
        ]
    if not is_lookup_id(selection.recipient_id):
        return []
    # Walks the (recipient_id, event) index instead of scanning every event of the stream.
    deliveries = EventRecipient.objects.filter(
        recipient_id=selection.recipient_id, event_id__gt=cursor, event__stream=selection.stream
    )
    if selection.types:
        deliveries = deliveries.filter(event__type__in=selection.types)
    rows = deliveries.order_by("event_id").values_list(
        "event_id", "event__payload", "event__bot_payload", "mentioned", "event__participant_payload"
    )[:limit]
    return [LoggedEvent(*row) for row in rows]


def event_batch_length(
    selection: EventSelection, *, cursor: int, limit: int, max_chars: int
) -> tuple[int, bool]:
    """How many of the next `limit` selected rows fit in `max_chars` of stored JSON (at least one), and
    whether the budget cut the count short. Read first, so a stream never holds a batch of huge rows."""
    if selection.recipient_id is None:
        events = Event.objects.filter(stream=selection.stream, seq__gt=cursor)
        if selection.types:
            events = events.filter(type__in=selection.types)
        prefix, order = "", "seq"
    elif not is_lookup_id(selection.recipient_id):
        return 0, False
    else:
        events = EventRecipient.objects.filter(
            recipient_id=selection.recipient_id, event_id__gt=cursor, event__stream=selection.stream
        )
        if selection.types:
            events = events.filter(event__type__in=selection.types)
        prefix, order = "event__", "event_id"
    size = (
        Length(f"{prefix}payload")
        + Coalesce(Length(f"{prefix}bot_payload"), 0)
        + Coalesce(Length(f"{prefix}participant_payload"), 0)
    )
    count = chars = 0
    for row_chars in events.order_by(order).annotate(size=size).values_list("size", flat=True)[:limit]:
        chars += row_chars
        if count and chars > max_chars:
            return count, True
        count += 1
    return count, False


def event_rows_newest_after(seq: int, *, limit: int) -> list[LogRow]:
    """The newest `limit` rows of all log streams with a seq above `seq`, in seq order, with recipients.

    Newest first in the query, so a reader that fell far behind gets the recent rows in one bounded read.
    Because commit order equals seq order (events.md §5.3), every row below the newest one returned has
    committed already: a short result holds every row above `seq`.
    """
    size = Length("payload") + Coalesce(Length("bot_payload"), 0) + Coalesce(Length("participant_payload"), 0)
    events = list(
        Event.objects.filter(seq__gt=seq)
        .order_by("-seq")
        .annotate(size=size)
        .values_list("seq", "stream", "type", "payload", "bot_payload", "participant_payload", "size")[:limit]
    )
    if not events:
        return []
    events.reverse()
    recipients: dict[int, dict[str, bool]] = {}
    deliveries = EventRecipient.objects.filter(event_id__gte=events[0][0], event_id__lte=events[-1][0])
    for event_id, recipient_id, mentioned in deliveries.values_list("event_id", "recipient_id", "mentioned"):
        recipients.setdefault(event_id, {})[recipient_id] = mentioned
    return [
        LogRow(
            seq=seq,
            stream=stream,
            type=type_,
            payload=payload,
            bot_payload=bot_payload,
            participant_payload=participant_payload,
            recipients=recipients.get(seq, _NO_RECIPIENTS),
            size=size,
        )
        for seq, stream, type_, payload, bot_payload, participant_payload, size in events
    ]


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
