"""Derived identity values of IM users: avatar initials, accent colour, handle slug, and wire ids."""

from __future__ import annotations

import re
import threading
import time

# The IM's two fixed users are ids every layer knows, so they live on the floor; re-exported for im.
from core.ids import ADMIN_ID as ADMIN_ID
from core.ids import MANAGER_ID as MANAGER_ID

ADMIN_ACCENT = "#dc2626"
MANAGER_ACCENT = "#0f766e"
FALLBACK_INITIALS = "WK"
ACCENT_PALETTE = ("#2563eb", "#7c3aed", "#0891b2", "#059669", "#ea580c", "#db2777")

_SLUG_DROP = re.compile(r"[^a-z0-9._-]")
_HAS_ALNUM = re.compile(r"[a-z0-9]")


def avatar_initials(name: str) -> str:
    """First usable character of each word until the initials take two or more UTF-8 bytes."""
    collected = ""
    for word in name.split():
        initial = next((ch for ch in word if ch not in "-_"), "")
        collected += initial
        if len(collected.encode()) >= 2:
            return collected.upper()
    return collected.upper() or FALLBACK_INITIALS


def accent_color(user_id: str) -> str:
    return ACCENT_PALETTE[sum(map(ord, user_id)) % len(ACCENT_PALETTE)]


def _sanitise(text: str) -> str:
    return _SLUG_DROP.sub("", text.strip().lower().replace(" ", "-"))


def agent_slug(*, name: str, agent_id: str, role: str) -> str:
    """The agent's IM handle and box/directory name: from the name, else the id, else the role word."""
    for candidate in (_sanitise(name), _sanitise(agent_id.removeprefix("u-"))):
        if _HAS_ALNUM.search(candidate):
            return candidate
    return role


class _MonotonicNanos:
    """Unix-nanosecond stamps made strictly increasing within the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            now = time.time_ns()
            self._last = now if now > self._last else self._last + 1
            return self._last


_stamps = _MonotonicNanos()


def new_room_id() -> str:
    return f"room-{_stamps.next()}"


def new_message_id() -> str:
    return f"msg-{_stamps.next()}"
