"""The inbox journal `inbox.jsonl` and the stream cursor `cursor.json` (builtin-runtime.md §3.3, §3.5)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runtime.contracts import Settings, parse_utc_iso, utc_iso

log = logging.getLogger("agent_runtime.channel")

INBOX_FILE = "inbox.jsonl"
CURSOR_FILE = "cursor.json"
# The dedupe set remembers a day of finished ids, at most 5,000 of them (§3.5).
DEDUPE_SECONDS = 24 * 3600
DEDUPE_MAX = 5000
# A long run rewrites the journal once this many lines were appended since the last compaction.
COMPACT_AFTER_LINES = 20000


@dataclass
class PendingEntry:
    """A `recv` without `done`: re-queued at start, its room scanned for gaps."""

    id: str
    room: str
    thread: str
    frame: dict[str, Any]
    at: float
    turn: str = ""
    # The sender's role when it was accepted, so a re-queue at start needs no server.
    role: str = ""


class InboxJournal:
    """Implements `Journal`. Every line is written (no fsync) before the cursor moves."""

    def __init__(self, settings: Settings, *, clock=time.time) -> None:
        self.path = settings.state_dir / INBOX_FILE
        self.window = settings.catchup_window
        self._clock = clock
        self.pending: OrderedDict[str, PendingEntry] = OrderedDict()
        # id → (finished at, "done" | "ignored:<reason>"), oldest first.
        self.finished: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._file = None
        self._appended = 0

    def open(self) -> list[PendingEntry]:
        """Load, expire what is older than the window, compact; the unfinished entries in journal order."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        for entry in self._read_lines():
            self._apply(entry)
        requeue: list[PendingEntry] = []
        expired: list[PendingEntry] = []
        for entry in self.pending.values():
            (expired if now - entry.at > self.window else requeue).append(entry)
        for entry in expired:
            del self.pending[entry.id]
            self.finished[entry.id] = (now, "expired")
            log.warning("inbox message %s in room %s expired unanswered", entry.id, entry.room)
        self._trim_finished(now)
        self._rewrite()
        return requeue

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def seen(self, message_id: str) -> bool:
        """Pending, done or ignored: a frame with this id is a duplicate (§3.4 rule 6)."""
        return message_id in self.pending or message_id in self.finished

    def pending_rooms(self) -> set[str]:
        return {entry.room for entry in self.pending.values()}

    def recv(
        self, *, message_id: str, room_id: str, thread_root_id: str, frame: dict[str, Any], role: str = ""
    ) -> None:
        now = self._clock()
        entry = PendingEntry(message_id, room_id, thread_root_id, frame, now, role=role)
        self.pending[message_id] = entry
        self._append(_recv_line(entry))

    def started(self, message_id: str, *, turn_id: str) -> None:
        entry = self.pending.get(message_id)
        if entry is not None:
            entry.turn = turn_id
        self._append({"op": "start", "id": message_id, "turn": turn_id, "at": utc_iso(self._clock())})

    def done(self, message_id: str) -> None:
        now = self._clock()
        self.pending.pop(message_id, None)
        self._finish(message_id, now, "done")
        self._append({"op": "done", "id": message_id, "at": utc_iso(now)})

    def ignored(self, message_id: str, reason: str) -> None:
        now = self._clock()
        self._finish(message_id, now, "ignored:" + reason)
        self._append({"op": "ignored", "id": message_id, "reason": reason, "at": utc_iso(now)})

    def _finish(self, message_id: str, now: float, how: str) -> None:
        self.finished[message_id] = (now, how)
        self.finished.move_to_end(message_id)
        if len(self.finished) > 2 * DEDUPE_MAX:
            self._trim_finished(now)

    def _trim_finished(self, now: float) -> None:
        while self.finished:
            oldest_id, (at, _) = next(iter(self.finished.items()))
            if len(self.finished) <= DEDUPE_MAX and now - at <= DEDUPE_SECONDS:
                break
            del self.finished[oldest_id]

    def _read_lines(self) -> list[dict[str, Any]]:
        """Parsed lines; a torn last line (a crash mid-write) and any undecodable line are dropped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for line in raw.split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                entries.append(entry)
        return entries

    def _apply(self, entry: dict[str, Any]) -> None:
        op, message_id = entry.get("op"), entry["id"]
        at = parse_utc_iso(entry.get("at")) or self._clock()
        if op == "recv":
            frame = entry.get("frame") if isinstance(entry.get("frame"), dict) else {}
            room, thread = str(entry.get("room") or ""), str(entry.get("thread") or "")
            role = str(entry.get("role") or "")
            self.pending[message_id] = PendingEntry(message_id, room, thread, frame, at, role=role)
        elif op == "start" and message_id in self.pending:
            self.pending[message_id].turn = str(entry.get("turn") or "")
        elif op in ("done", "ignored", "expired"):
            self.pending.pop(message_id, None)
            self.finished[message_id] = (
                at,
                op if op != "ignored" else "ignored:" + str(entry.get("reason", "")),
            )
            self.finished.move_to_end(message_id)

    def _rewrite(self) -> None:
        """Compaction: unfinished entries plus the dedupe set, then the file is appended to again."""
        lines = []
        for message_id, (at, how) in self.finished.items():
            if how.startswith("ignored:"):
                lines.append({"op": "ignored", "id": message_id, "reason": how[8:], "at": utc_iso(at)})
            else:
                lines.append({"op": how, "id": message_id, "at": utc_iso(at)})
        for entry in self.pending.values():
            lines.append(_recv_line(entry))
            if entry.turn:
                lines.append({"op": "start", "id": entry.id, "turn": entry.turn, "at": utc_iso(entry.at)})
        self.close()
        tmp = self.path.with_name(INBOX_FILE + ".tmp")
        tmp.write_text("".join(_dump(line) for line in lines), encoding="utf-8")
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the process
        self._appended = 0

    def _append(self, line: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the process
        self._file.write(_dump(line))
        self._file.flush()
        self._appended += 1
        if self._appended >= COMPACT_AFTER_LINES:
            self._trim_finished(self._clock())
            self._rewrite()


def _recv_line(entry: PendingEntry) -> dict[str, Any]:
    line = {"op": "recv", "id": entry.id, "room": entry.room, "thread": entry.thread, "frame": entry.frame}
    if entry.role:
        line["role"] = entry.role
    line["at"] = utc_iso(entry.at)
    return line


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


class Cursor:
    """Where the stream resumes: the last journaled or ignored frame, written at most once per second."""

    def __init__(self, settings: Settings, *, clock=time.time) -> None:
        self.path: Path = settings.state_dir / CURSOR_FILE
        self._clock = clock
        self.stream = ""
        self.last_message_id = ""
        self.last_seq = ""
        self.updated_at: float | None = None
        self.existed = False
        self._dirty = False
        self._written_at = 0.0

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            log.warning("cursor.json unreadable; starting without a cursor")
            return
        self.existed = True
        if isinstance(data, dict):
            self.stream = str(data.get("stream") or "")
            self.last_message_id = str(data.get("last_message_id") or "")
            self.last_seq = str(data.get("last_seq") or "")
            self.updated_at = parse_utc_iso(data.get("updated_at"))

    def advance(self, *, message_id: str, sse_id: str, stream: str) -> None:
        self.stream = stream
        if message_id:
            self.last_message_id = message_id
        if sse_id.isascii() and sse_id.isdigit():
            self.last_seq = sse_id
        self.updated_at = self._clock()
        self._dirty = True
        if self.updated_at - self._written_at >= 1.0:
            self.flush()

    def touch(self, *, stream: str) -> None:
        """Record that a stream of `stream` was alive now (connect, disconnect, exit): the next start's
        gap scan looks back from here."""
        self.stream = stream
        self.updated_at = self._clock()
        self._dirty = True
        self.flush()

    def last_event_id(self, mode: str) -> str:
        """§3.3: participant → the message id; bot → the seq, else a `msg-` message id; nothing yet → ''."""
        if mode == "participant":
            return self.last_message_id
        if self.last_seq:
            return self.last_seq
        return self.last_message_id if self.last_message_id.startswith("msg-") else ""

    def flush(self) -> None:
        if not self._dirty:
            return
        data = {
            "stream": self.stream,
            "last_message_id": self.last_message_id,
            "last_seq": self.last_seq,
            "updated_at": utc_iso(self.updated_at or self._clock()),
        }
        tmp = self.path.with_name(CURSOR_FILE + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cursor.json not written: %s", exc)
            return
        self._dirty = False
        self._written_at = self._clock()
