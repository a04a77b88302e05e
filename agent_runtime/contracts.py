"""What the runtime's halves hand each other: settings, accepted messages, and the ports of the agent loop.

The channel half (stream, gating, journal, sending, REST) and the agent half (loop, prompt, history, LLM,
tools) meet only through these types, so either can be tested with a fake of the other.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

MANAGER_ROLE = "manager"
WORKER_ROLE = "worker"


@dataclass(frozen=True)
class Settings:
    """Everything the runtime reads at start (builtin-runtime.md §1.3); built by `config.load_settings`."""

    base_url: str
    token: str
    bot_id: str
    participant_id: str
    llm_base_url: str
    llm_api_key: str
    model: str
    home: Path
    workspace: Path
    # agents.defaults
    max_tokens: int = 32768
    max_tool_iterations: int = 50
    temperature: float = 0.7
    context_window: int = 4 * 32768
    max_parallel_turns: int = 4
    tool_feedback_enabled: bool = False
    tool_feedback_max_args_length: int = 300
    # channels.csgclaw
    allow_from: tuple[str, ...] = ()
    mention_only: bool = True
    # gateway
    health_host: str = "127.0.0.1"
    health_port: int = 18790
    health_enabled: bool = True
    # tools
    exec_timeout_seconds: int = 60
    enable_deny_patterns: bool = True
    custom_deny_patterns: tuple[str, ...] = ()
    custom_allow_patterns: tuple[str, ...] = ()
    max_read_file_size: int = 65536
    # CSGCLAW_RUNTIME_* knobs
    stream_mode: str = "auto"
    catchup_window: float = 1800.0
    stream_idle_timeout: float = 60.0
    llm_timeout: float = 120.0
    backoff_scale: float = 1.0
    test_connect_delay: float = 0.0
    test_crash: str = ""
    debug: bool = False

    @property
    def strip_id(self) -> str:
        """`strip(BOT)` of participants.md §1.2."""
        return strip_id(self.bot_id)

    @property
    def self_ids(self) -> frozenset[str]:
        """Ids that mean "me" in tags, mentions and senders (§3.1)."""
        bare = self.strip_id
        return frozenset(
            {self.bot_id, self.participant_id, f"u-{bare}", f"user-{bare}", f"agent-{bare}", f"pt-{bare}"}
        )

    @property
    def role(self) -> str:
        manager = self.bot_id == "u-manager" or self.participant_id == "pt-manager"
        return MANAGER_ROLE if manager else WORKER_ROLE

    @property
    def state_dir(self) -> Path:
        return self.workspace / "state" / "builtin-runtime"

    @property
    def picoclaw_dir(self) -> Path:
        return self.home / ".picoclaw"


_ID_PREFIXES = ("user-", "agent-", "pt-", "u-")


def strip_id(value: str) -> str:
    """Trim, then remove one leading prefix at a time (user-, agent-, pt-, u-) until none matches."""
    value = value.strip()
    while True:
        for prefix in _ID_PREFIXES:
            if value.startswith(prefix):
                value = value[len(prefix) :]
                break
        else:
            return value


@dataclass(frozen=True)
class Inbound:
    """A message that passed gating (§3.4): journaled, and queued on its conversation."""

    message_id: str
    room_id: str
    thread_root_id: str
    chat_type: str
    sender_id: str
    sender_name: str
    sender_role: str
    # The text for the model (§3.4 last paragraph): tags as @Name, group prefix, attachment lines.
    text: str
    # Unix seconds of the message's `created_at` (the frame's `timestamp`), else of its arrival.
    created_at: float
    # Earlier room messages around a thread's root (§3.4), for the first turn of that thread; '' otherwise.
    thread_context: str = ""
    frame: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_key(self) -> str:
        """`csgclaw:<room>` or `csgclaw:<room>/<thread>` (§4.1)."""
        base = f"csgclaw:{self.room_id}"
        return f"{base}/{self.thread_root_id}" if self.thread_root_id else base


@dataclass(frozen=True)
class SendResult:
    """What a send did: the message id the server stored, or the error text (logged; never raised into a
    turn)."""

    message_id: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class OutboundFile:
    """A workspace file a message carries as its attachment; its bytes are read from disk while sending."""

    path: str
    name: str
    media_type: str
    size: int


class Outbox(Protocol):
    """Posts into rooms through the stream's send route with retries (§3.6)."""

    def message_id(self, *, turn_id: str, room_id: str, thread_root_id: str, index: int) -> str:
        """The deterministic id of the `index`-th message a turn sends to (room, thread)."""

    async def send(
        self,
        *,
        message_id: str,
        room_id: str,
        thread_root_id: str,
        text: str,
        file: OutboundFile | None = None,
    ) -> SendResult:
        """Send `text` (trimmed, cut at 60,000 characters; blank without a file is not sent and reports ok),
        with `file` as a multipart attachment when given."""


class Journal(Protocol):
    """The inbox journal (§3.5) as the loop sees it."""

    def started(self, message_id: str, *, turn_id: str) -> None: ...

    def done(self, message_id: str) -> None: ...


class RestClient(Protocol):
    """The server's REST API with the box token (§3.1); `path` starts with `/api/`."""

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON or the body text); raises `httpx.HTTPError` on transport failure."""

    async def user(self, user_id: str) -> dict[str, Any] | None:
        """A user of `GET /api/v1/users` (id, name, handle, role), cached 30 s, re-read on a miss."""

    async def room(self, room_id: str) -> dict[str, Any] | None:
        """`GET /api/v1/rooms/{id}` with its members, cached 30 s."""


class StatusBoard(Protocol):
    """The runtime-status file (§7.2); the loop reports its counters here."""

    def update(self, **fields: Any) -> None: ...


def join_url(base: str, path: str) -> str:
    """`base`'s path joined with `path`, keeping `base`'s query (PicoClaw `url_test.go`, §3.1).

    `http://h:8080/v1?name=foo` + `/api/x` → `http://h:8080/v1/api/x?name=foo`.
    """
    parts = urlsplit(base)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, parts.query, ""))


CRASH_POINTS = ("after_inbox", "after_llm_request", "after_reply_send")


def crash_point(settings: Settings, point: str) -> None:
    """`CSGCLAW_RUNTIME_TEST_CRASH` (§1.3): die like `kill -9` at `point`, once per workspace."""
    if settings.test_crash != point:
        return
    marker = settings.state_dir / "test-crash-done"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(point)
    os._exit(137)


def utc_iso(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds and `Z`: `2026-08-19T10:15:01.123Z`."""
    millis = round(ts * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def parse_utc_iso(text: Any) -> float | None:
    """Unix seconds of an RFC 3339 time (`…Z` or an offset, any fraction); None when it is not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
