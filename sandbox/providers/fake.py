"""Fake sandbox provider for tests and demos: a box is a JSON file, operations are lines in a log."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sandbox.providers.base import (
    BoxInfo,
    BoxNotFound,
    BoxSpec,
    SandboxError,
    TailLogsMixin,
    ensure_dir,
    map_state,
    parse_timestamp,
    write_private_file,
)

if TYPE_CHECKING:
    from core.config import SandboxConfig

FAIL_ENV = "CSGCLAW_FAKE_SANDBOX_FAIL"
DELAY_ENV = "CSGCLAW_FAKE_SANDBOX_DELAY"
STATE_FILE_NAME = "fake-box.json"
LOG_FILE_NAME = "fake-gateway.log"

_STATES = {state: state for state in ("created", "running", "stopped", "exited")}


def _fail_if_injected(operation: str) -> None:
    # Read on every call so a test can switch failures on and off between operations.
    failing = {part.strip() for part in os.environ.get(FAIL_ENV, "").split(",")}
    if operation in failing:
        raise SandboxError(f"fake sandbox: {operation} failed")


def _injected_delay() -> float:
    raw = os.environ.get(DELAY_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else 0.0
    except ValueError as error:
        raise SandboxError(f"fake sandbox: {DELAY_ENV} must be a number of seconds: {raw!r}") from error


class FakeProvider:
    """Selected with CSGCLAW_SANDBOX_PROVIDER_CLASS=sandbox.providers.fake.FakeProvider."""

    name = "fake"

    def __init__(self, sandbox_config: SandboxConfig | None = None) -> None:
        self.sandbox_config = sandbox_config

    def open(self, home_dir: Path) -> FakeRuntime:
        _fail_if_injected("open")
        return FakeRuntime(ensure_dir(Path(home_dir)))


class FakeRuntime:
    """All state lives in the runtime home, so separate processes (onboard, the server) agree."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.state_path = home / STATE_FILE_NAME
        self.log_path = home / LOG_FILE_NAME

    def create(self, spec: BoxSpec) -> FakeBox:
        _fail_if_injected("create")
        delay = _injected_delay()
        if delay:
            time.sleep(delay)
        record = {
            "id": f"fake-{spec.name}",
            "name": spec.name,
            "state": "running",
            "created_at": datetime.now(UTC).isoformat(),
            "spec": {
                "image": spec.image,
                "cmd": list(spec.cmd),
                "env": dict(spec.env),
                "mounts": [asdict(mount) for mount in spec.mounts],
                "labels": dict(spec.labels),
            },
        }
        self.save(record)
        self.append_log(spec.name, "create")
        return FakeBox(self, record["id"])

    def get(self, id_or_name: str) -> FakeBox:
        record = self.load(id_or_name)
        return FakeBox(self, record["id"])

    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        _fail_if_injected("remove")
        record = self.load(id_or_name)
        self.state_path.unlink(missing_ok=True)
        self.append_log(record["name"], "remove")

    def close(self) -> None:
        """Nothing is held open between operations."""

    def load(self, id_or_name: str) -> dict[str, Any]:
        try:
            record = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as error:
            raise SandboxError(f"fake sandbox: read {self.state_path}: {error}") from error
        if not isinstance(record, dict) or id_or_name not in (record.get("id"), record.get("name")):
            raise BoxNotFound(f'fake sandbox: box "{id_or_name}" not found')
        return record

    def save(self, record: dict[str, Any]) -> None:
        write_private_file(self.state_path, json.dumps(record, indent=2) + "\n")

    def append_log(self, name: str, operation: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"fake box {name} {operation}\n")

    def log_tail(self, lines: int) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        kept = text.splitlines(keepends=True)[-lines:] if lines > 0 else []
        return "".join(kept)


class FakeBox(TailLogsMixin):
    def __init__(self, runtime: FakeRuntime, box_id: str) -> None:
        self.runtime = runtime
        self.box_id = box_id

    def start(self) -> None:
        self._transition("start", "running")

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        self._transition("stop", "stopped")

    def info(self) -> BoxInfo:
        _fail_if_injected("info")
        record = self.runtime.load(self.box_id)
        self.runtime.append_log(record["name"], "info")
        return BoxInfo(
            id=record["id"],
            name=record["name"],
            state=map_state(record.get("state"), _STATES),
            created_at=parse_timestamp(record.get("created_at")),
        )

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """`tail -n N <any path>` answers from the operation log; every other command succeeds silently."""
        _fail_if_injected("exec")
        record = self.runtime.load(self.box_id)
        if argv[:2] == ["tail", "-n"] and len(argv) >= 3:
            try:
                lines = int(argv[2])
            except ValueError:
                stderr.write(f"tail: invalid number of lines: {argv[2]!r}\n".encode())
                return 1
            stdout.write(self.runtime.log_tail(lines).encode("utf-8"))
        self.runtime.append_log(record["name"], "exec")
        return 0

    def close(self) -> None:
        """Handles hold no resources."""

    def _transition(self, operation: str, state: str) -> None:
        _fail_if_injected(operation)
        record = self.runtime.load(self.box_id)
        record["state"] = state
        self.runtime.save(record)
        self.runtime.append_log(record["name"], operation)
