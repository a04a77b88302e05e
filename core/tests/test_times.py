"""Tests of core/times.py: moments as the wire carries them."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.times import format_time


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 6, 1, 8, 30, 5, tzinfo=UTC), "2026-06-01T08:30:05Z"),
        (datetime(2026, 6, 1, 8, 30, 5, 120000, tzinfo=UTC), "2026-06-01T08:30:05.12Z"),
        (datetime(2026, 6, 1, 8, 30, 5, 7, tzinfo=UTC), "2026-06-01T08:30:05.000007Z"),
        (datetime(2026, 6, 1, 16, 30, 5, tzinfo=timezone(timedelta(hours=8))), "2026-06-01T08:30:05Z"),
    ],
)
def test_a_moment_is_rfc3339_in_utc_with_trimmed_microseconds(moment, text):
    assert format_time(moment) == text
