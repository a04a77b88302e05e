"""Cursor memory of the bot and Feishu streams (events.md §5.7), for clients that never send Last-Event-ID.

PicoClaw reconnects without a cursor after every drop and every lifetime cap; the server therefore keeps
the last delivered seq per bot in `StreamCursor` and resumes from it when the bot comes back in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

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


class StoredCursorMemory:
    """The `CursorMemory` of one open stream (im.realtime.sse), backed by `StreamCursor`.

    Ids too long to be stored are never remembered: such a bot cannot exist, and its stream stays empty.
    """

    def __init__(self, *, kind: str, key: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.key = key
        self._clock = clock
        self._last_write: float | None = None

    def recall(self) -> int | None:
        if not is_lookup_id(self.key):
            return None
        return stream_cursor_recall(
            kind=self.kind, key=self.key, window=settings.CSGCLAW_STREAM_RESUME_WINDOW
        )

    def remember(self, seq: int, *, force: bool) -> None:
        if not is_lookup_id(self.key):
            return
        now = self._clock()
        if not force and self._last_write is not None and now - self._last_write < COALESCE_SECONDS:
            return
        stream_cursor_remember(kind=self.kind, key=self.key, seq=seq)
        self._last_write = now
