"""Cursor memory of the bot and Feishu streams (events.md §5.7), for clients that never send Last-Event-ID.

PicoClaw reconnects without a cursor after every drop and every lifetime cap; the server therefore keeps
the last delivered seq per bot in `StreamCursor` and resumes from it when the bot comes back in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from im.models import StreamCursor
from im.selectors import is_lookup_id

# Progress is written at most this often: a busy stream would otherwise write once per frame. Losing up
# to a second of progress in a crash only costs a few replayed (never lost) frames.
COALESCE_SECONDS = 1.0


class StreamCursorKind(StrEnum):
    """The namespaces of bots' keys in im's `StreamCursor`: one per stream whose progress is remembered."""

    BOT = "bot"
    FEISHU = "feishu"
    PARTICIPANT = "participant"


@transaction.atomic
def stream_cursor_remember(*, kind: str, key: str, seq: int) -> None:
    """Store `seq` for (kind, key) and touch `updated_at`; never moves a stored cursor backwards.

    Concurrent streams of one bot each call this; the single conditional UPDATE keeps the maximum
    without reading first, so two writers cannot overwrite each other's higher value.
    """
    if _raise_to(kind=kind, key=key, seq=seq):
        return
    try:
        with transaction.atomic():
            StreamCursor.objects.create(kind=kind, key=key, seq=seq, updated_at=timezone.now())
    except IntegrityError:
        # Another stream of the same bot created the row first: merge into it.
        _raise_to(kind=kind, key=key, seq=seq)


def _raise_to(*, kind: str, key: str, seq: int) -> int:
    """Rows updated (0 or 1): the stored seq becomes max(stored, seq) and `updated_at` now."""
    return StreamCursor.objects.filter(kind=kind, key=key).update(
        seq=Greatest("seq", Value(seq, output_field=BigIntegerField())), updated_at=timezone.now()
    )


def stream_cursor_recall(*, kind: str, key: str, window: float) -> int | None:
    """The stored seq when its stream was alive within the last `window` seconds, else None."""
    since = timezone.now() - timedelta(seconds=window)
    return (
        StreamCursor.objects.filter(kind=kind, key=key, updated_at__gte=since)
        .values_list("seq", flat=True)
        .first()
    )


class ProgressSlots:
    """When each (kind, key) last wrote its progress, shared by every stream of that key in the process.

    A message to a bot with many open streams (or many bots' streams woken at once) would otherwise make
    each stream write the same seq: a hundred writes queued behind SQLite's one write lock per message.
    The first stream to claim a key's slot writes; the others skip until the slot is free again.
    """

    # Slots older than COALESCE_SECONDS decide nothing; beyond this many keys they are dropped.
    MAX_KEYS = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._written_at: dict[tuple[str, str], float] = {}

    def claim(self, kind: str, key: str) -> bool:
        """True when no stream of (kind, key) wrote within COALESCE_SECONDS; the caller must write now."""
        now = self._clock()
        with self._lock:
            written_at = self._written_at.get((kind, key))
            if written_at is not None and now - written_at < COALESCE_SECONDS:
                return False
            self._mark(kind, key, now)
            return True

    def __len__(self) -> int:
        """Keys holding a slot, expired ones included until they are dropped."""
        with self._lock:
            return len(self._written_at)

    def mark(self, kind: str, key: str) -> None:
        """A forced write happened: progress need not be written again for a while."""
        with self._lock:
            self._mark(kind, key, self._clock())

    def _mark(self, kind: str, key: str, now: float) -> None:
        self._written_at[(kind, key)] = now
        if len(self._written_at) > self.MAX_KEYS:
            self._written_at = {
                slot: at for slot, at in self._written_at.items() if now - at < COALESCE_SECONDS
            }


progress_slots = ProgressSlots()


class StoredCursorMemory:
    """The `CursorMemory` of one open stream (im.realtime.sse), backed by `StreamCursor`.

    Ids too long to be stored are never remembered: such a bot cannot exist, and its stream stays empty.
    """

    def __init__(self, *, kind: str, key: str, slots: ProgressSlots = progress_slots) -> None:
        self.kind = kind
        self.key = key
        self._slots = slots

    def recall(self) -> int | None:
        if not is_lookup_id(self.key):
            return None
        return stream_cursor_recall(
            kind=self.kind, key=self.key, window=settings.CSGCLAW_STREAM_RESUME_WINDOW
        )

    def claim(self) -> bool:
        return is_lookup_id(self.key) and self._slots.claim(self.kind, self.key)

    def remember(self, seq: int, *, force: bool) -> None:
        if not is_lookup_id(self.key):
            return
        stream_cursor_remember(kind=self.kind, key=self.key, seq=seq)
        if force:
            self._slots.mark(self.kind, self.key)
