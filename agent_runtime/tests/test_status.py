"""The runtime-status file (builtin-runtime.md §7.2)."""

from __future__ import annotations

import json
import os

import pytest

from agent_runtime import VERSION
from agent_runtime.status import StatusFile
from agent_runtime.tests.channel_fakes import make_settings


def test_fields_and_atomic_rewrite_on_change(tmp_path):
    now = [1_800_000_000.0]
    status = StatusFile(make_settings(tmp_path), clock=lambda: now[0])
    status.write()
    data = json.loads(status.path.read_text())
    assert list(data) == [
        "runtime",
        "version",
        "pid",
        "started_at",
        "stream",
        "connected",
        "since",
        "last_error",
        "turns_running",
        "queued",
        "last_message_id",
        "llm_calls",
        "tools_rejected",
    ]
    assert (data["runtime"], data["version"], data["pid"], data["connected"]) == (
        "builtin",
        VERSION,
        os.getpid(),
        False,
    )
    now[0] += 2.5
    status.update(stream="participant", connected=True)
    data = json.loads(status.path.read_text())
    assert (data["stream"], data["connected"], data["since"]) == (
        "participant",
        True,
        "2027-01-15T08:00:02.500Z",
    )
    now[0] += 1
    status.update(turns_running=1, queued=2, llm_calls=3, tools_rejected=True)
    data = json.loads(status.path.read_text())
    assert data["since"] == "2027-01-15T08:00:02.500Z"
    assert (data["turns_running"], data["queued"], data["llm_calls"], data["tools_rejected"]) == (
        1,
        2,
        3,
        True,
    )
    assert not list(status.path.parent.glob("*.tmp"))


def test_unknown_fields_are_a_programming_error(tmp_path):
    with pytest.raises(KeyError):
        StatusFile(make_settings(tmp_path)).update(mood="happy")
