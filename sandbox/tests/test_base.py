"""Tests for sandbox/providers/base.py: the default logs(), timestamps, state mapping and file helpers."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from sandbox.providers.base import (
    GATEWAY_LOG_GUEST_PATH,
    BoxInfo,
    SandboxError,
    TailLogsMixin,
    ensure_dir,
    map_state,
    parse_timestamp,
    write_private_file,
)

pytestmark = pytest.mark.timeout(10)


class ScriptedBox(TailLogsMixin):
    def __init__(self, output: bytes, exit_code: int) -> None:
        self.output = output
        self.exit_code = exit_code
        self.calls: list[list[str]] = []

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        self.calls.append(argv)
        stdout.write(self.output)
        return self.exit_code


def test_default_logs_tails_the_gateway_log_inside_the_box() -> None:
    box = ScriptedBox(b"line 1\nline 2\n", 0)

    assert box.logs(2) == "line 1\nline 2\n"
    assert box.calls == [["tail", "-n", "2", GATEWAY_LOG_GUEST_PATH]]
    assert GATEWAY_LOG_GUEST_PATH == "/home/picoclaw/.picoclaw/gateway.log"


def test_default_logs_reports_the_tail_exit_code() -> None:
    with pytest.raises(SandboxError, match=r"^tail exited with code 1$"):
        ScriptedBox(b"", 1).logs(10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-24T10:00:00Z", datetime(2026, 4, 24, 10, tzinfo=UTC)),
        ("2026-04-24T10:00:00.123456789Z", datetime(2026, 4, 24, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-04-24T10:00:00", datetime(2026, 4, 24, 10, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_timestamp(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_map_state_ignores_case_and_defaults_to_unknown() -> None:
    mapping = {"running": "running"}
    assert map_state(" Running ", mapping) == "running"  # type: ignore[arg-type]
    assert map_state("paused", mapping) == "unknown"  # type: ignore[arg-type]
    assert map_state(None, mapping) == "unknown"  # type: ignore[arg-type]


def test_box_info_detail_defaults_to_empty() -> None:
    assert BoxInfo(id="x", name="x", state="running", created_at=None).detail == ""


def test_write_private_file_is_0600_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    target.write_text("old")
    target.chmod(0o644)

    write_private_file(target, "new")

    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret.json"]


def test_ensure_dir_creates_missing_parents_0755_whatever_the_umask(tmp_path: Path) -> None:
    import os

    previous = os.umask(0o077)
    try:
        ensure_dir(tmp_path / "a" / "b")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
