"""Incremental SSE parser with PicoClaw `consumeEvents` rules (builtin-runtime.md §3.2 step 4)."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseFrame:
    """One dispatched frame: trimmed `event:` name, `data:` lines joined with `\\n`, and the `id:`."""

    event: str
    data: str
    id: str


class SseParser:
    """Feed raw bytes as they arrive; complete frames come back in order. Comment lines are skipped."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._id = ""

    def feed(self, chunk: bytes) -> list[SseFrame]:
        self._buffer += self._decoder.decode(chunk)
        frames: list[SseFrame] = []
        while True:
            newline = self._buffer.find("\n")
            if newline < 0:
                return frames
            line = self._buffer[:newline].rstrip("\r")
            self._buffer = self._buffer[newline + 1 :]
            frame = self._line(line)
            if frame is not None:
                frames.append(frame)

    def _line(self, line: str) -> SseFrame | None:
        if line == "":
            if not (self._event or self._data or self._id):
                # The blank line that ends a comment (`: heartbeat`) or a run of blank lines: no frame.
                return None
            frame = SseFrame(self._event, "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], ""
            return frame
        if line.startswith(":"):
            return None
        if line.startswith("event:"):
            self._event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            self._data.append(line[len("data:") :].strip())
        elif line.startswith("id:"):
            self._id = line[len("id:") :].strip()
        return None


def decode_message(frame: SseFrame) -> tuple[dict[str, Any] | None, str]:
    """The frame's JSON object when it is a message frame, else (None, why it was dropped)."""
    if not frame.data:
        return None, "empty data"
    if frame.event not in ("", "message"):
        return None, f"event {frame.event!r}"
    try:
        payload = json.loads(frame.data)
    except ValueError:
        return None, "bad JSON"
    if not isinstance(payload, dict):
        return None, "data is not an object"
    return payload, ""
