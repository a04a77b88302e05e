"""Conversation history: append-only session files, their meta, trimming by whole turns (§4.3)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_runtime.contracts import Settings

log = logging.getLogger("agent_runtime.agent")

# Past this many skipped lines the file is rewritten, so a long-lived room does not re-read dead lines.
COMPACT_AFTER_SKIPPED = 500
# History kept before the current turn: at most 40 messages and 40 % of the context window.
MAX_KEPT_MESSAGES = 40
MAX_KEPT_SHARE = 0.4
MAX_ORIGINS = 3
ORIGIN_EXCERPT_CHARS = 200
PROVIDER_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def iso_now(now: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and `Z` (the format the gap scan reads)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def file_stem(key: str) -> str:
    return key.replace(":", "_").replace("/", "_").replace("\\", "_")


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """PicoClaw `EstimateMessageTokens`: (characters + 12 per message) × 2/5."""
    chars = 0
    for message in messages:
        chars += len(message.get("content") or "") + len(message.get("reasoning_content") or "") + 12
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    return chars * 2 // 5


def _write_atomic(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Session:
    """One conversation's history: `messages` are the kept lines (after `skip`), oldest first."""

    def __init__(self, directory: Path, key: str, meta: dict[str, Any]) -> None:
        self.key = key
        self.path = directory / f"{file_stem(key)}.jsonl"
        self.meta_path = directory / f"{file_stem(key)}.meta.json"
        self.meta = meta
        self.messages: list[dict[str, Any]] = []

    def load(self) -> None:
        if self.meta_path.exists():
            try:
                self.meta.update(json.loads(self.meta_path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                log.warning("session meta %s unreadable; starting it afresh", self.meta_path.name)
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        torn = bool(lines[-1])
        parsed = []
        for line in lines[:-1] if torn else lines:
            if not line.strip():
                continue
            try:
                parsed.append(json.loads(line))
            except ValueError:
                log.warning("session %s: dropped an unreadable line", self.key)
        if torn:
            # A crash in mid-write left half a line; cut it off so the next append starts clean.
            log.warning("session %s: dropped a torn last line", self.key)
            with open(self.path, "r+b") as handle:
                handle.truncate(len(raw) - len(lines[-1]))
        skip = min(int(self.meta.get("skip", 0)), len(parsed))
        self.messages = parsed[skip:]

    def append(self, message: dict[str, Any]) -> None:
        line = {key: message[key] for key in (*PROVIDER_KEYS, "message_id") if message.get(key) is not None}
        line.setdefault("content", "")
        line["ts"] = iso_now()
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_dumps(line) + "\n")
        self.messages.append(line)
        self.save_meta()

    def save_meta(self) -> None:
        self.meta["updated_at"] = iso_now()
        _write_atomic(self.meta_path, _dumps(self.meta))

    def drop_front(self, count: int) -> None:
        """Hide the oldest `count` kept messages; the file is rewritten once enough lines are hidden."""
        if count <= 0:
            return
        self.messages = self.messages[count:]
        self.meta["skip"] = int(self.meta.get("skip", 0)) + count
        self.meta["dropped"] = int(self.meta.get("dropped", 0)) + count
        if self.meta["skip"] > COMPACT_AFTER_SKIPPED:
            self._rewrite()
        self.save_meta()

    def truncate(self, index: int) -> None:
        """Forget the kept messages from `index` on (a turn that runs again after a crash)."""
        self.messages = self.messages[:index]
        self._rewrite()
        self.save_meta()

    def _rewrite(self) -> None:
        _write_atomic(self.path, "".join(_dumps(message) + "\n" for message in self.messages))
        self.meta["skip"] = 0

    def add_origin(self, *, room_id: str, thread_root_id: str, excerpt: str) -> None:
        origins = [o for o in self.meta.get("origins", []) if o.get("room_id") != room_id]
        origins.append(
            {
                "room_id": room_id,
                "thread_root_id": thread_root_id,
                "excerpt": excerpt[:ORIGIN_EXCERPT_CHARS],
                "at": iso_now(),
            }
        )
        self.meta["origins"] = origins[-MAX_ORIGINS:]
        self.save_meta()

    def find_user_message(self, message_id: str) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].get("message_id") == message_id:
                return index
        return None


def turn_starts(messages: list[dict[str, Any]], limit: int) -> list[int]:
    """Indexes (< `limit`) where a turn begins: each `user` message (PicoClaw `parseTurnBoundaries`)."""
    return [index for index in range(limit) if messages[index].get("role") == "user"]


def trim(session: Session, current_start: int, context_window: int) -> int:
    """Drop whole turns before `current_start` while over budget; returns the new `current_start`."""
    budget = int(context_window * MAX_KEPT_SHARE)
    while current_start > 0:
        before = session.messages[:current_start]
        if len(before) <= MAX_KEPT_MESSAGES and estimate_tokens(before) <= budget:
            break
        cut = next((i for i in turn_starts(session.messages, current_start) if i > 0), current_start)
        session.drop_front(cut)
        current_start -= cut
    return current_start


def drop_oldest_half(session: Session, current_start: int) -> int:
    """PicoClaw `forceCompression`: drop the oldest half of the turns before the current one."""
    starts = [0] + [i for i in turn_starts(session.messages, current_start) if i > 0]
    if current_start == 0:
        return 0
    count = max(1, len(starts) // 2)
    cut = starts[count] if count < len(starts) else current_start
    session.drop_front(cut)
    return current_start - cut


def sanitize(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provider-ready messages: tool results only right after their call, calls only with all results."""
    out: list[dict[str, Any]] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        if message.get("role") == "tool":
            continue
        provider = {key: message[key] for key in PROVIDER_KEYS if message.get(key) is not None}
        calls = message.get("tool_calls")
        if message.get("role") != "assistant" or not calls:
            out.append(provider)
            continue
        results = []
        while index < len(messages) and messages[index].get("role") == "tool":
            results.append(messages[index])
            index += 1
        wanted = {call.get("id") for call in calls}
        answered = {result.get("tool_call_id") for result in results}
        if wanted <= answered:
            if not provider.get("content"):
                provider["content"] = None
            out.append(provider)
            out.extend(
                {key: r[key] for key in PROVIDER_KEYS if r.get(key) is not None}
                for r in results
                if r.get("tool_call_id") in wanted
            )
        elif provider.get("content"):
            provider.pop("tool_calls")
            out.append(provider)
    return out


class SessionStore:
    """The sessions of `W/sessions`, each loaded once and then kept in memory."""

    def __init__(self, settings: Settings) -> None:
        self.directory = settings.workspace / "sessions"
        self._sessions: dict[str, Session] = {}

    def get(self, key: str, *, room_id: str, thread_root_id: str, chat_type: str = "") -> Session:
        session = self._sessions.get(key)
        if session is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            now = iso_now()
            meta = {
                "key": key,
                "room_id": room_id,
                "thread_root_id": thread_root_id,
                "chat_type": chat_type,
                "title": "",
                "skip": 0,
                "dropped": 0,
                "origins": [],
                "created_at": now,
                "updated_at": now,
            }
            session = Session(self.directory, key, meta)
            session.load()
            self._sessions[key] = session
        if chat_type and session.meta.get("chat_type") != chat_type:
            session.meta["chat_type"] = chat_type
        return session
