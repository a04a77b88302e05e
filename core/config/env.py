"""Environment expansion of string values (spec §4)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_NAME_RUN = re.compile(r"[A-Za-z0-9_]+")
_SPECIAL_NAMES = frozenset("*#@!?-0123456789")


def expand_env(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand `$NAME`, `${NAME}`, `${NAME:-default}` and `$$` the way spec §4 (Go's os.Expand) does."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    start = 0
    dollar = value.find("$")
    while dollar != -1 and dollar + 1 < len(value):
        out.append(value[start:dollar])
        replacement, consumed = _expand_reference(value, dollar + 1, env)
        out.append(replacement)
        start = dollar + 1 + consumed
        dollar = value.find("$", start)
    out.append(value[start:])
    return "".join(out)


def _expand_reference(text: str, pos: int, env: Mapping[str, str]) -> tuple[str, int]:
    """The replacement for the reference starting right after a `$`, and how many characters it used."""
    char = text[pos]
    if char == "$":
        return "$", 1
    if char == "{":
        close = text.find("}", pos + 1)
        if close == -1:
            return "", 1
        return _lookup_braced(text[pos + 1 : close], env), close - pos + 1
    if char in _SPECIAL_NAMES:
        return env.get(char) or "", 1
    match = _NAME_RUN.match(text, pos)
    if match is None:
        return "$", 0
    return env.get(match.group()) or "", match.end() - pos


def _lookup_braced(name: str, env: Mapping[str, str]) -> str:
    variable, has_default, default = name.partition(":-")
    if has_default:
        return env.get(variable) or default
    return env.get(name) or ""
