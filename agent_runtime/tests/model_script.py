"""A scripted chat-completions model for agent-half tests, mounted with respx at the settings' LLM URL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

LLM_URL = "http://llm.test/api/bots/u-manager/llm/chat/completions"


def text(content: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def tool_call(name: str, explanation: str = "", call_id: str = "", /, **arguments: Any) -> httpx.Response:
    call = {"id": call_id or f"call-{name}", "type": "function"}
    call["function"] = {"name": name, "arguments": json.dumps(arguments)}
    message = {"role": "assistant", "content": explanation, "tool_calls": [call]}
    return httpx.Response(200, json={"choices": [{"message": message, "finish_reason": "tool_calls"}]})


class Script:
    """Answers calls in order; an `asyncio.Event` in the list holds that call until it is set."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        answer = self.answers.pop(0) if self.answers else text("(script ended)")
        if isinstance(answer, tuple):
            gate, answer = answer
            await gate.wait()
        return answer

    def last_messages(self, index: int = -1) -> list[dict[str, Any]]:
        return self.requests[index]["messages"]


async def never() -> None:
    await asyncio.Event().wait()
