"""The runtime-status file `~/.picoclaw/runtime-status.json` (builtin-runtime.md §7.2), written atomically."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from agent_runtime import VERSION
from agent_runtime.contracts import Settings, utc_iso

log = logging.getLogger("agent_runtime.channel")

STATUS_FILE = "runtime-status.json"


class StatusFile:
    """Implements `StatusBoard`: holds the fields of §7.2 and writes them whenever one changes."""

    def __init__(self, settings: Settings, *, clock=time.time) -> None:
        self.path: Path = settings.picoclaw_dir / STATUS_FILE
        self._clock = clock
        now = clock()
        self.fields: dict[str, Any] = {
            "runtime": "builtin",
            "version": VERSION,
            "pid": os.getpid(),
            "started_at": utc_iso(now),
            "stream": "",
            "connected": False,
            "since": utc_iso(now),
            "last_error": "",
            "turns_running": 0,
            "queued": 0,
            "last_message_id": "",
            "llm_calls": 0,
            "tools_rejected": False,
        }

    def update(self, **fields: Any) -> None:
        unknown = set(fields) - set(self.fields)
        if unknown:
            raise KeyError(f"unknown status fields: {sorted(unknown)}")
        changed = {key: value for key, value in fields.items() if self.fields[key] != value}
        if not changed:
            return
        if "connected" in changed:
            changed["since"] = utc_iso(self._clock())
        self.fields.update(changed)
        self.write()

    def write(self) -> None:
        """Temp file + `os.replace`, so the local provider never reads half a file."""
        tmp = self.path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.fields, separators=(",", ":")) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("status file not written: %s", exc)
