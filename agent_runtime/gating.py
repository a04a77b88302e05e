"""Normalising and gating stream frames into `Inbound` messages (builtin-runtime.md §3.4)."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent_runtime.contracts import Inbound, Settings

log = logging.getLogger("agent_runtime.channel")

AGENT_ROLES = ("manager", "worker")
HUMAN_ROLE = "admin"
# A runaway exchange between agents posts many messages fast; real work between two human messages rarely
# needs ten agent messages in ten minutes in one room (§3.4 rule 5).
LOOP_GUARD_MESSAGES = 10
LOOP_GUARD_SECONDS = 600.0
# The server caps a thread snapshot at 32 KiB; one long neighbour still should not crowd out the rest.
CONTEXT_MESSAGE_CHARS = 2000

_AT_TAG = re.compile(r'<at user_id="([^"]*)">([^<]*)</at>')
_AT_OPEN = re.compile(r'<at user_id="([^"]*)"')

UserLookup = Callable[[str], Awaitable[dict[str, Any] | None]]


def normalize_at_mentions(text: str) -> str:
    """`<at user_id="X">Name</at>` → `@Name`; an empty name keeps the tag (`normalizeInboundAtMentions`)."""
    return _AT_TAG.sub(lambda match: f"@{match.group(2)}" if match.group(2) else match.group(0), text)


def has_at_mention(text: str, ids: frozenset[str] | set[str]) -> bool:
    """A `<at user_id="X"` tag with X one of `ids` (PicoClaw `hasInboundBotAtMention`)."""
    return any(match.group(1) in ids for match in _AT_OPEN.finditer(text or ""))


def attachment_lines(attachments: Any) -> str:
    """One line per attachment (§3.4): where the file tools find its workspace copy, or that it has none."""
    lines = ""
    for item in attachments if isinstance(attachments, list) else []:
        if not isinstance(item, dict):
            continue
        media_type = item.get("media_type") or item.get("content_type") or "application/octet-stream"
        size = item.get("size_bytes", item.get("size", 0))
        path = item.get("workspace_path")
        where = f" at {path}" if isinstance(path, str) and path else ", not copied to the workspace"
        lines += f"\n[attachment: {item.get('name', '')} ({media_type}, {size} bytes){where}]"
    return lines


def thread_context_text(payload: dict[str, Any], self_ids: frozenset[str]) -> str:
    """The user message a new thread session starts with (§3.4): the summary line, then the room messages
    around the root, marked as earlier room context; '' when the frame has no thread context."""
    context = payload.get("thread_context")
    summary = context.get("summary") if isinstance(context, dict) else None
    if not isinstance(summary, dict) or not summary:
        return ""
    root, count = summary.get("root_excerpt", ""), summary.get("message_count", 0)
    text = f'[thread context] root: "{root}", {count} messages'
    messages = [item for item in context.get("context") or [] if isinstance(item, dict)]
    if not messages:
        return text
    text += (
        "\nEarlier room messages around the thread's root, as reference only; this thread's conversation"
        " starts after them:"
    )
    root_id = context.get("root_message_id") or payload.get("thread_root_id")
    for message in messages:
        sender = str(message.get("sender_id", ""))
        label = f"{sender} (you)" if sender in self_ids else sender
        if message.get("id") == root_id:
            label += " [thread root]"
        content = normalize_at_mentions(str(message.get("content", "")))
        if len(content) > CONTEXT_MESSAGE_CHARS:
            content = content[:CONTEXT_MESSAGE_CHARS] + " … (cut)"
        if message.get("kind") == "event":
            content = "[event] " + content
        text += f"\n- {label}: {content}" + attachment_lines(message.get("attachments")).replace("\n", "\n  ")
    return text


@dataclass(frozen=True)
class Frame:
    """The fields of a participant or bot stream frame that gating reads (§3.4 step 1)."""

    message_id: str
    room_id: str
    sender_id: str
    thread_root_id: str
    chat_type: str
    text: str
    sender_name: str
    mentions: tuple[str, ...]
    mentioned: bool
    created_at: float | None

    @property
    def is_group(self) -> bool:
        return self.chat_type.lower() == "group"


def read_frame(payload: dict[str, Any]) -> Frame:
    context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    mentions = payload.get("mentions") if isinstance(payload.get("mentions"), list) else []
    return Frame(
        message_id=_text(payload.get("message_id")),
        room_id=_text(payload.get("room_id"))
        or _text(payload.get("chat_id"))
        or _text(context.get("chat_id")),
        sender_id=_text(sender.get("id")) or _text(payload.get("sender_id")),
        thread_root_id=_text(payload.get("thread_root_id")) or _text(context.get("topic_id")),
        chat_type=_text(payload.get("chat_type")) or _text(context.get("chat_type")),
        text=payload.get("text") if isinstance(payload.get("text"), str) else "",
        sender_name=_text(sender.get("display_name")) or _text(sender.get("username")),
        mentions=tuple(item for item in mentions if isinstance(item, str)),
        mentioned=payload.get("mentioned") is True,
        created_at=_timestamp(payload.get("timestamp")),
    )


def model_text(frame: Frame, payload: dict[str, Any], sender_name: str) -> str:
    """Tags as `@Name`, the group prefix, one line per attachment (§3.4 last paragraph)."""
    text = normalize_at_mentions(frame.text)
    if frame.is_group:
        text = f"{sender_name} ({frame.sender_id}): {text}"
    return text + attachment_lines(payload.get("attachments"))


class Gate:
    """Rules 1–6 of §3.4; `seen` is the journal's dedupe check, `user` the cached user lookup."""

    def __init__(
        self, settings: Settings, *, seen: Callable[[str], bool], user: UserLookup, clock=time.time
    ) -> None:
        self.settings = settings
        self._seen = seen
        self._user = user
        self._clock = clock
        self._allow = set(settings.allow_from)
        self._agent_messages: dict[str, deque[float]] = {}
        self._guard_warned: set[str] = set()

    async def check(self, payload: dict[str, Any]) -> tuple[Inbound | None, str]:
        """The accepted message, or None and the reason it is ignored."""
        settings = self.settings
        frame = read_frame(payload)
        if not frame.room_id or not frame.sender_id:
            return None, "no room or sender"
        if frame.sender_id in settings.self_ids:
            return None, "own message"
        if self._allow and not ({"*", frame.sender_id, f"csgclaw:{frame.sender_id}"} & self._allow):
            return None, "not allowed"
        if frame.is_group and settings.mention_only and not self._mentioned(frame):
            return None, "not mentioned"
        user = await self._user(frame.sender_id) or {}
        role = _text(user.get("role"))
        now = self._clock()
        if frame.is_group and self._loop_guarded(frame.room_id, role, now):
            return None, "loop guard"
        if not frame.message_id or self._seen(frame.message_id):
            return None, "duplicate"
        self._count(frame, role, now)
        return self._inbound(frame, payload, user, now), ""

    def rebuild(self, payload: dict[str, Any], *, role: str) -> Inbound | None:
        """A journaled frame as `Inbound` again, for re-queueing at start: no rule again, no server needed."""
        frame = read_frame(payload)
        if not frame.message_id or not frame.room_id:
            return None
        return self._inbound(frame, payload, {"role": role}, self._clock())

    def _inbound(self, frame: Frame, payload: dict[str, Any], user: dict[str, Any], now: float) -> Inbound:
        sender_name = frame.sender_name or _text(user.get("name")) or frame.sender_id
        return Inbound(
            message_id=frame.message_id,
            room_id=frame.room_id,
            thread_root_id=frame.thread_root_id,
            chat_type="group" if frame.is_group else (frame.chat_type.lower() or "direct"),
            sender_id=frame.sender_id,
            sender_name=sender_name,
            sender_role=_text(user.get("role")),
            text=model_text(frame, payload, sender_name),
            thread_context=self._thread_context(frame, payload),
            created_at=frame.created_at if frame.created_at is not None else now,
            frame=payload,
        )

    def _thread_context(self, frame: Frame, payload: dict[str, Any]) -> str:
        return thread_context_text(payload, self.settings.self_ids) if frame.thread_root_id else ""

    def _mentioned(self, frame: Frame) -> bool:
        ids = self.settings.self_ids
        return (
            frame.mentioned or has_at_mention(frame.text, ids) or any(item in ids for item in frame.mentions)
        )

    def _loop_guarded(self, room_id: str, role: str, now: float) -> bool:
        if role not in AGENT_ROLES:
            return False
        recent = self._agent_messages.get(room_id)
        if recent is None:
            return False
        while recent and now - recent[0] > LOOP_GUARD_SECONDS:
            recent.popleft()
        if len(recent) < LOOP_GUARD_MESSAGES:
            return False
        if room_id not in self._guard_warned:
            self._guard_warned.add(room_id)
            log.warning(
                "loop guard: %s agent messages in room %s within %s s, no human since; agents ignored there",
                len(recent),
                room_id,
                int(LOOP_GUARD_SECONDS),
            )
        return True

    def _count(self, frame: Frame, role: str, now: float) -> None:
        if not frame.is_group:
            return
        if role in AGENT_ROLES:
            self._agent_messages.setdefault(frame.room_id, deque()).append(now)
        elif role == HUMAN_ROLE:
            self._agent_messages.pop(frame.room_id, None)
            self._guard_warned.discard(frame.room_id)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _timestamp(value: Any) -> float | None:
    """The frame's `timestamp`: Unix milliseconds as a decimal string."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip()) / 1000.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000.0
    return None
