"""Moments as the wire carries them (http-api.md §1): RFC 3339 in UTC, the way upstream's Go renders them."""

from __future__ import annotations

from datetime import UTC, datetime

# Go's zero time.Time as upstream renders it: the created_at of a Feishu bot that exists only in config.
ZERO_TIME = "0001-01-01T00:00:00Z"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`; microseconds without trailing zeros, omitted when zero."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"
