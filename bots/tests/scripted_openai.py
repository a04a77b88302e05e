"""A scripted OpenAI upstream for agent tests: ordered rules pick each answer (builtin-runtime.md §8).

    script = ScriptedOpenAI()
    script.rule(agent("u-manager"), last_user_contains("hello"), answer=text("hi admin"))
    script.rule(agent("u-alice"), answer=tool_call("exec", command="true"))
    ...
    assert script.unmatched == []

Each chat-completions request takes the first rule whose matchers all accept it and that is not used up (a
rule answers once unless `repeat=True`). A request no rule takes is recorded in `unmatched` and answered
with a 500, so a test that forgot a step fails loudly instead of hanging. `hold(event, then)` blocks the
request until the test sets `event`, which is how tests catch a turn in the middle.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bots.tests.fake_openai import USAGE, FakeOpenAI

Body = dict[str, Any]
Matcher = Callable[[Body], bool]
HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """What the provider sends back: a chat completion message, or an error status with its text."""

    message: dict[str, Any] | None = None
    status: int = 200
    error_text: str = ""
    hold: threading.Event | None = None
    then: Answer | None = None


def text(content: str) -> Answer:
    return Answer(message={"role": "assistant", "content": content})


_call_ids = itertools.count(1)


def tool_call(tool: str, /, **arguments: Any) -> Answer:
    """One call of `tool` with `arguments` (any names: `name`, `content` … are the tool's own)."""
    call = {
        "id": f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": tool, "arguments": json.dumps(arguments)},
    }
    return Answer(message={"role": "assistant", "content": "", "tool_calls": [call]})


def status(code: int, error_text: str = "scripted provider error") -> Answer:
    return Answer(status=code, error_text=error_text)


def hold(event: threading.Event, then: Answer) -> Answer:
    """Answer `then`, but only once `event` is set (at most HOLD_SECONDS later)."""
    return Answer(hold=event, then=then)


def _messages(body: Body) -> list[dict[str, Any]]:
    messages = body.get("messages")
    return messages if isinstance(messages, list) else []


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def agent(agent_id: str) -> Matcher:
    """Requests of one agent, told apart by the `## CSGClaw` identity line of its system prompt."""
    marker = f"(id: {agent_id},"
    return lambda body: any(
        message.get("role") == "system" and marker in _content_text(message) for message in _messages(body)
    )


def _last_is(role: str, needle: str) -> Matcher:
    def matches(body: Body) -> bool:
        messages = _messages(body)
        return bool(messages) and messages[-1].get("role") == role and needle in _content_text(messages[-1])

    return matches


def last_user_contains(needle: str) -> Matcher:
    """The request ends with a user message containing `needle` (a new turn, or steering)."""
    return _last_is("user", needle)


def last_tool_contains(needle: str) -> Matcher:
    """The request ends with a tool result containing `needle` (the turn goes on after a tool call)."""
    return _last_is("tool", needle)


def has_tools(expected: bool = True) -> Matcher:
    return lambda body: bool(body.get("tools")) == expected


@dataclass
class Rule:
    matchers: tuple[Matcher, ...]
    answer: Answer | Callable[[], Answer]
    repeat: bool
    name: str
    used: int = 0


@dataclass
class ScriptedCall:
    """One request as the script saw it; times are `time.time()` so they compare with server timestamps."""

    body: Body
    arrived_at: float
    rule: str = ""
    answered_at: float = 0.0
    held_seconds: float = 0.0


@dataclass
class _Script:
    rules: list[Rule] = field(default_factory=list)
    calls: list[ScriptedCall] = field(default_factory=list)
    unmatched: list[Body] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ScriptedOpenAI(FakeOpenAI):
    """FakeOpenAI whose chat completions follow the script; models and every other route are unchanged."""

    def __init__(self, *, models: list[str] | None = None) -> None:
        super().__init__(models=models)
        self.script = _Script()
        self.changed = threading.Condition()

    def rule(
        self, *matchers: Matcher, answer: Answer | Callable[[], Answer], repeat: bool = False, name: str = ""
    ) -> Rule:
        """Add a rule; `answer` may be a function, called when the rule fires (for ids known only later)."""
        added = Rule(matchers, answer, repeat, name or f"rule {len(self.script.rules) + 1}")
        with self.script.lock:
            self.script.rules.append(added)
        return added

    @property
    def calls(self) -> list[ScriptedCall]:
        with self.script.lock:
            return list(self.script.calls)

    @property
    def unmatched(self) -> list[Body]:
        with self.script.lock:
            return list(self.script.unmatched)

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[ScriptedCall]:
        """Block until at least `count` requests arrived; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.script.calls) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} LLM calls, got {len(self.script.calls)}")
                self.changed.wait(remaining)
        return self.calls

    def answer(self, body: Body) -> tuple[int, Any]:
        """(status, JSON body) for one request, after any hold; called on the request's own thread."""
        call = ScriptedCall(body=body, arrived_at=time.time())
        with self.script.lock:
            self.script.calls.append(call)
            chosen = next(
                (
                    rule
                    for rule in self.script.rules
                    if (rule.repeat or rule.used == 0) and all(matches(body) for matches in rule.matchers)
                ),
                None,
            )
            if chosen is None:
                self.script.unmatched.append(body)
            else:
                chosen.used += 1
                call.rule = chosen.name
        with self.changed:
            self.changed.notify_all()
        if chosen is None:
            return 500, {"error": {"message": "no scripted answer for this request", "type": "script"}}
        answer = chosen.answer() if callable(chosen.answer) else chosen.answer
        if answer.hold is not None:
            held_from = time.monotonic()
            answer.hold.wait(HOLD_SECONDS)
            call.held_seconds = time.monotonic() - held_from
            answer = answer.then or text("")
        call.answered_at = time.time()
        if answer.status != 200:
            return answer.status, {"error": {"message": answer.error_text, "type": "scripted_error"}}
        return 200, {
            "id": f"chatcmpl-scripted-{len(self.script.calls)}",
            "object": "chat.completion",
            "created": int(call.arrived_at),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": answer.message, "finish_reason": _finish(answer)}],
            "usage": USAGE,
        }


def _finish(answer: Answer) -> str:
    return "tool_calls" if answer.message and answer.message.get("tool_calls") else "stop"
