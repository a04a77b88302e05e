"""The local provider's state file: one JSON record per runtime home, for the one box it holds."""

from __future__ import annotations

from typing import Any

STATE_FILE_NAME = "local-box.json"


def state_file_problem(record: dict[str, Any]) -> str:
    """What keeps a state file (edited by hand, or cut short) from driving its box; "" when nothing does."""
    for key in ("id", "name"):
        if not isinstance(record.get(key), str):
            return f'"{key}" is missing or not a string'
    spec = record.get("spec")
    if not isinstance(spec, dict):
        return '"spec" is missing or not an object'
    if not isinstance(spec.get("env"), dict):
        return '"spec.env" is missing or not an object'
    for key in ("workspace", "projects"):
        if not isinstance(spec.get(key), str):
            return f'"spec.{key}" is missing or not a string'
    # The program a spawn ran: exec reuses its binds and variables (builtin-runtime.md §2.3).
    if record.get("runtime") == "builtin":
        for key in ("python", "package"):
            if not isinstance(record.get(key), str):
                return f'"{key}" is missing or not a string'
    elif record.get("isolation") == "bwrap" and not isinstance(record.get("executable"), str):
        return '"executable" is missing or not a string'
    return ""
