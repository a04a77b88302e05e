"""Texts a turn posts besides the model's words: tool feedback and the manager auto-mention (§3.6)."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from agent_runtime.contracts import strip_id

EXPLANATION_CHARS = 300
WORD_JOINER = "\u2060"
# Also the JSON-escaped form (`user_id=\"…\"`) that tool arguments show.
_TAG = re.compile(r'<at user_id=\\?"([^"\\]*)\\?">(.*?)</at>', re.DOTALL)
_TAG_OPEN = re.compile(r'<at user_id="([^"]*)"')
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"^\s*<think>.*", re.DOTALL | re.IGNORECASE)


def strip_think(content: str) -> str:
    """Remove `<think>…</think>` blocks and an unclosed leading `<think>`."""
    return _THINK_OPEN.sub("", _THINK_BLOCK.sub("", content)).strip()


def _cut(text: str, limit: int) -> str:
    if limit <= 0 or len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def unmention(text: str) -> str:
    """Tags become `@Name` and every `@` is followed by U+2060, so no mention rule of the server matches."""
    text = _TAG.sub(lambda m: "@" + (m.group(2).strip() or m.group(1)), text)
    return text.replace("@", "@" + WORD_JOINER)


def tool_feedback(tool: str, explanation: str, arguments: Any, max_args_length: int) -> str:
    """PicoClaw `FormatToolFeedbackMessage`: the tool line, the explanation, the arguments as compact JSON."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if arguments.strip() else {}
    preview = (
        arguments
        if isinstance(arguments, str)
        else json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    )
    lines = [f"\U0001f527 `{tool}`"]
    explanation = _cut(explanation.strip(), EXPLANATION_CHARS)
    if explanation:
        lines.append(explanation)
    preview = _cut(preview.strip(), max_args_length)
    if preview:
        lines.append(f"```json\n{preview}\n```")
    return unmention("\n".join(lines))


def tags_user(text: str, user_id: str) -> bool:
    """Whether `text` has an `<at>` tag naming `user_id` under any of its id forms."""
    wanted = strip_id(user_id)
    return any(strip_id(found) == wanted for found in _TAG_OPEN.findall(text))


def auto_mention(text: str, *, manager_id: str, manager_name: str) -> str:
    """A worker's report to the manager starts with the manager's tag, so it wakes the manager."""
    if tags_user(text, manager_id):
        return text
    return f'<at user_id="{manager_id}">{manager_name or strip_id(manager_id)}</at> {text}'
