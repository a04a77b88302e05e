"""The gap scan (builtin-runtime.md §3.5): addressed messages that neither stream nor journal brought."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from agent_runtime.contracts import RestClient, Settings, parse_utc_iso
from agent_runtime.journal import InboxJournal

log = logging.getLogger("agent_runtime.channel")

MAX_CANDIDATES = 20
# Server and runtime clocks are the same machine's, but `since` is taken after the stream ended.
SINCE_SLACK = 2.0


class GapScanner:
    """Reads rooms over REST and returns stream-shaped frames for the messages still owed an answer."""

    def __init__(
        self, settings: Settings, rest: RestClient, journal: InboxJournal, *, clock=time.time
    ) -> None:
        self.settings = settings
        self.rest = rest
        self.journal = journal
        self._clock = clock

    async def scan(self, *, first_ever: bool, since: float | None) -> list[dict[str, Any]]:
        """Frames oldest first, ≤ 20; `first_ever`: no cursor.json existed; `since`: the last stream's end."""
        now = self._clock()
        rooms = await (self._bootstrap_rooms() if first_ever else self._recent_rooms(now))
        candidates: list[tuple[float, dict[str, Any]]] = []
        for room_id, is_direct, messages in rooms:
            candidates.extend(
                self._candidates(room_id, is_direct, messages, now, None if first_ever else since)
            )
        candidates.sort(key=lambda item: item[0])
        frames = [frame for _, frame in candidates[-MAX_CANDIDATES:]]
        for frame in frames:
            if frame.get("thread_root_id"):
                await self._add_thread_context(frame)
        log.info("gap scan: %s rooms, %s messages owed an answer", len(rooms), len(frames))
        return frames

    async def _add_thread_context(self, frame: dict[str, Any]) -> None:
        """A stream frame's `thread_context` (participants.md §2.4) from the thread view, when it reads."""
        room_id, root_id = frame["room_id"], frame["thread_root_id"]
        try:
            status, view = await self.rest.request("GET", f"/api/v1/rooms/{room_id}/threads/{root_id}")
        except httpx.HTTPError as exc:
            log.warning("gap scan: thread %s not read: %s", root_id, exc)
            return
        root = view.get("root") if status == 200 and isinstance(view, dict) else None
        summary = (root.get("thread") or {}).get("context_summary") if isinstance(root, dict) else None
        if not isinstance(summary, dict):
            log.info("gap scan: thread %s has no context (HTTP %s)", root_id, status)
            return
        context: dict[str, Any] = {"root_message_id": root_id, "summary": summary}
        if isinstance(view.get("context"), list) and view["context"]:
            context["context"] = view["context"]
        frame["thread_context"] = context

    async def _bootstrap_rooms(self) -> list[tuple[str, bool, list[Any]]]:
        try:
            status, body = await self.rest.request("GET", "/api/v1/im/bootstrap")
        except httpx.HTTPError as exc:
            log.warning("gap scan: bootstrap not read: %s", exc)
            return []
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("rooms"), list):
            log.warning("gap scan: bootstrap not read (HTTP %s)", status)
            return []
        rooms = []
        for room in body["rooms"]:
            if not isinstance(room, dict) or self.settings.bot_id not in (room.get("members") or []):
                continue
            messages = room.get("messages") if isinstance(room.get("messages"), list) else []
            rooms.append((str(room.get("id", "")), room.get("is_direct") is True, messages))
        return rooms

    async def _recent_rooms(self, now: float) -> list[tuple[str, bool, list[Any]]]:
        """Rooms of sessions active within the window and of unfinished journal entries."""
        chat_types: dict[str, str] = {}
        for meta_path in sorted(Path(self.settings.workspace, "sessions").glob("*.meta.json")):
            meta = _read_json(meta_path)
            updated = parse_utc_iso(meta.get("updated_at"))
            room_id = meta.get("room_id")
            if (
                isinstance(room_id, str)
                and room_id
                and updated is not None
                and now - updated <= self.settings.catchup_window
            ):
                chat_types.setdefault(room_id, str(meta.get("chat_type") or ""))
        for entry in self.journal.pending.values():
            chat_types.setdefault(entry.room, str(entry.frame.get("chat_type") or ""))
        rooms = []
        for room_id, chat_type in chat_types.items():
            try:
                # Thread replies stay out of the default timeline (threads-attachments.md §1.3).
                params = {"room_id": room_id, "include_thread_replies": "true"}
                status, body = await self.rest.request("GET", "/api/v1/messages", params=params)
            except httpx.HTTPError as exc:
                log.warning("gap scan: room %s not read: %s", room_id, exc)
                continue
            if status != 200 or not isinstance(body, list):
                log.info("gap scan: room %s not read (HTTP %s)", room_id, status)
                continue
            if chat_type not in ("direct", "group"):
                room = await self.rest.room(room_id)
                chat_type = "direct" if room and room.get("is_direct") is True else "group"
            rooms.append((room_id, chat_type == "direct", body))
        return rooms

    def _candidates(
        self, room_id: str, is_direct: bool, messages: list[Any], now: float, since: float | None
    ) -> list[tuple[float, dict[str, Any]]]:
        self_ids = self.settings.self_ids
        # A later message of mine answers what came before it in the same conversation (room or thread).
        last_own: dict[str, int] = {}
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("sender_id") in self_ids:
                last_own[_thread_of(message)] = index
        found = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("kind") != "message":
                continue
            if index <= last_own.get(_thread_of(message), -1):
                continue
            message_id, sender_id = message.get("id"), message.get("sender_id")
            created = parse_utc_iso(message.get("created_at"))
            mentions = [item for item in message.get("mentions") or [] if isinstance(item, str)]
            if not isinstance(message_id, str) or not isinstance(sender_id, str) or sender_id in self_ids:
                continue
            if created is None or now - created > self.settings.catchup_window:
                continue
            if since is not None and created <= since - SINCE_SLACK:
                continue
            if not is_direct and not self_ids.intersection(mentions):
                continue
            if self.journal.seen(message_id):
                continue
            found.append((created, _frame(room_id, is_direct, message, created, mentions)))
        return found


def _frame(
    room_id: str, is_direct: bool, message: dict[str, Any], created: float, mentions: list[str]
) -> dict:
    """A bot-stream-shaped frame (events.md §3.3) for a message read over REST."""
    frame: dict[str, Any] = {
        "message_id": message["id"],
        "room_id": room_id,
        "chat_id": room_id,
        "chat_type": "direct" if is_direct else "group",
        "sender": {"id": message["sender_id"]},
        "sender_id": message["sender_id"],
        "text": message.get("content") if isinstance(message.get("content"), str) else "",
        "timestamp": str(round(created * 1000)),
    }
    if mentions:
        frame["mentions"] = mentions
    if _thread_of(message):
        frame["thread_root_id"] = _thread_of(message)
    if isinstance(message.get("attachments"), list) and message["attachments"]:
        frame["attachments"] = message["attachments"]
    return frame


def _thread_of(message: dict[str, Any]) -> str:
    """The root id of a thread reply; '' for a top-level message."""
    relates_to = message.get("relates_to")
    if isinstance(relates_to, dict) and relates_to.get("rel_type") == "m.thread":
        root = relates_to.get("event_id")
        return root if isinstance(root, str) else ""
    return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
