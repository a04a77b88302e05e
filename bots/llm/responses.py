"""The OpenAI Responses API on the agent-scoped proxy (participants.md §5.5–§5.6), minus the relay itself.

Providers with a Responses API get the request as is (model rewritten); for the others the server
converts the request to chat completions and the chat answer back to a Responses answer. Everything
here is pure apart from the process-wide memory of providers without a Responses API; the relay lives in
bots/llm/views.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from bots.llm.upstream import compact_json
from core.config import ResolvedModel
from core.http import ApiError

TOOL_HISTORY_TEXT = (
    "this session contains Responses tool-use history that cannot be converted to chat completions; "
    "start a new session after changing model/provider"
)
INPUT_REQUIRED_TEXT = "responses input is required for chat fallback"
# Status codes by which a provider says it has no Responses API (§5.6).
NO_RESPONSES_API_STATUSES = frozenset({404, 405})

_NEUTRAL_TOOL_CHOICES = ("none", "auto")
_SYSTEM_ROLES = frozenset({"developer", "system", "latest_reminder"})
_KEPT_ROLES = frozenset({"user", "assistant", "tool"})
_COPIED_FIELDS = (
    "stream",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "seed",
    "response_format",
    "user",
)
_TOOL_CALL_KEYS = ("tool_calls", "function_call", "tool_call_id")
_USAGE_NAMES = (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens"))

ProviderKey = tuple[str, str, str]

# (provider name, base_url, model id) of the providers that answered /responses with 404 or 405; they are
# asked in chat completions until the process ends.
providers_without_responses_api: set[ProviderKey] = set()


def provider_key(model: ResolvedModel) -> ProviderKey:
    return (model.provider_name, model.base_url, model.model_id)


def rewrite_responses_request(body: dict[str, Any], model: ResolvedModel) -> tuple[bytes, bool]:
    """The body sent to `/responses` and whether the client asked for a stream (§5.5).

    Only `model` changes: `reasoning_effort` is a chat field, the Responses API has `reasoning` instead.
    """
    body["model"] = model.model_id
    return compact_json(body).encode(), body.get("stream") is True


# --- request conversion (§5.6 items 1–3) -----------------------------------------------------------------


def chat_request_from_responses(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body of a (rewritten) Responses body; the chat rewrite is the caller's.

    Raises ApiError 400 when the request holds tool-use history or no message at all.
    """
    if _has_tool_use(body):
        raise ApiError(400, TOOL_HISTORY_TEXT)
    messages = _messages(body)
    if not messages:
        raise ApiError(400, INPUT_REQUIRED_TEXT)
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for name in _COPIED_FIELDS:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    return chat


def _has_tool_use(body: dict[str, Any]) -> bool:
    tool_choice = body.get("tool_choice")
    if tool_choice and tool_choice not in _NEUTRAL_TOOL_CHOICES and tool_choice != {"type": "none"}:
        return True
    return any(_is_tool_use(item) for item in _objects_within(body.get("input")))


def _objects_within(value: Any) -> Iterator[dict[str, Any]]:
    """Every object nested in `value` at any depth, `value` itself included."""
    if isinstance(value, dict):
        yield value
        for nested in value.values():
            yield from _objects_within(nested)
    elif isinstance(value, list):
        for nested in value:
            yield from _objects_within(nested)


def _is_tool_use(item: dict[str, Any]) -> bool:
    kind = item.get("type")
    if isinstance(kind, str) and ("tool" in kind or kind.endswith(("_call", "_call_output"))):
        return True
    if item.get("role") == "tool" or any(item.get(key) for key in _TOOL_CALL_KEYS):
        return True
    return "call_id" in item and "output" in item


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        messages.append({"role": "system", "content": instructions})
    given = body.get("input")
    if isinstance(given, str):
        if given.strip():
            messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for item in given:
            message = _message(item)
            if message is not None:
                messages.append(message)
    return messages


def _message(item: Any) -> dict[str, str] | None:
    if isinstance(item, str):
        role, text = "user", item
    elif isinstance(item, dict):
        given_role = item.get("role")
        if given_role in _SYSTEM_ROLES:
            role = "system"
        elif given_role in _KEPT_ROLES:
            role = given_role
        else:
            role = "user"
        text = _item_text(item)
    else:
        return None
    return {"role": role, "content": text} if text.strip() else None


def _item_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    text = _parts_text(content)
    if not text:
        fallback = item.get("text")
        text = fallback if isinstance(fallback, str) else ""
    return text


def _parts_text(parts: Any) -> str:
    """The concatenated `text` (or `content`) of a list of content parts."""
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            for key in ("text", "content"):
                if isinstance(part.get(key), str):
                    texts.append(part[key])
                    break
    return "".join(texts)


# --- answer conversion (§5.6 items 5–6) ------------------------------------------------------------------


def response_id(chat_id: Any) -> str:
    """`X` → `resp_X` (kept when it is one already); without an id, a fresh `resp_csgclaw_<unix ns>`."""
    if isinstance(chat_id, str) and chat_id:
        return chat_id if chat_id.startswith("resp_") else f"resp_{chat_id}"
    return f"resp_csgclaw_{time.time_ns()}"


def response_from_chat(answer: Any, *, model_id: str) -> dict[str, Any]:
    """The Responses answer of a non-streamed chat answer; ValueError when it is not a JSON object."""
    if not isinstance(answer, dict):
        raise ValueError("chat response is not a JSON object")
    identifier = response_id(answer.get("id"))
    text = _choice_text(answer.get("choices"))
    response = _response_object(
        identifier,
        created_at=_created_at(answer.get("created")),
        model=_model(answer.get("model"), model_id),
        status="completed",
        output=[_message_item(identifier, "completed", text)],
    )
    response["output_text"] = text
    if isinstance(answer.get("usage"), dict):
        response["usage"] = _responses_usage(answer["usage"])
    return response


def _responses_usage(chat_usage: dict[str, Any]) -> dict[str, Any]:
    """The chat usage (§5.6 item 5) plus its counts under the Responses names.

    An extension: Responses clients (the openai SDK's `ResponseUsage`, Codex) read `input_tokens` and
    `output_tokens` and would find no usage in the chat names alone; the chat keys stay for any client
    that reads those.
    """
    usage = dict(chat_usage)
    for chat_name, responses_name in _USAGE_NAMES:
        if chat_name in chat_usage and responses_name not in chat_usage:
            usage[responses_name] = chat_usage[chat_name]
    return usage


def _choice_text(choices: Any) -> str:
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else _parts_text(content)


def _created_at(created: Any) -> int:
    if isinstance(created, int) and not isinstance(created, bool):
        return created
    return int(time.time())


def _model(model: Any, model_id: str) -> str:
    return model if isinstance(model, str) and model else model_id


def _response_object(
    identifier: str, *, created_at: int, model: str, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": identifier,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": model,
        "output": output,
    }


def _message_item(identifier: str, status: str, text: str | None) -> dict[str, Any]:
    """The assistant message item; `text` None while it has no content part yet."""
    content = [] if text is None else [_output_text_part(text)]
    return {
        "id": f"{identifier}_msg",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def event_frame(event: dict[str, Any]) -> bytes:
    """One Responses SSE frame: `event: <type>` and the data carrying the same `type`."""
    return f"event: {event['type']}\ndata: {compact_json(event)}\n\n".encode()


def error_frame(message: str, code: Any = "upstream_error") -> bytes:
    """A stream failure told to a Responses client (§5.5 item 5, §5.6 item 6)."""
    return event_frame({"type": "error", "code": code, "message": message, "param": None})


class ChatStreamConverter:
    """Turns a chat-completions SSE body, fed in arbitrary chunks, into Responses event frames (§5.6 item 6).

    Each `feed` returns the frames its chunk completes, so every frame can be sent the moment its chunk
    arrived. `completed` is true once `response.completed` went out; `ended` once nothing more will.
    """

    def __init__(self, *, model_id: str, event_limit: int) -> None:
        # An event (or a line) longer than this is dropped rather than buffered without bound.
        self._event_limit = event_limit
        self._partial_line = bytearray()
        self._data_lines: list[bytes] = []
        self._data_size = 0
        self._id = response_id(None)
        self._id_taken = False
        self._model = model_id
        self._created_at = int(time.time())
        self._texts: list[str] = []
        self._started = False
        self.completed = False
        self.ended = False
        # The provider's in-stream error (`{"error": …}`), if it sent one.
        self.error: str | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self._partial_line += chunk
        if b"\n" not in chunk:
            if len(self._partial_line) > self._event_limit:
                self._partial_line = bytearray()
            return []
        *lines, rest = self._partial_line.split(b"\n")
        self._partial_line = rest
        frames: list[bytes] = []
        for line in lines:
            frames += self._read_line(line.rstrip(b"\r"))
        return frames

    def finish(self) -> list[bytes]:
        """The frames owed at the end of the provider's body: its last event, then the completion."""
        frames = self._read_line(bytes(self._partial_line)) + self._dispatch()
        self._partial_line = bytearray()
        return frames + self._complete()

    def _read_line(self, line: bytes) -> list[bytes]:
        if self.ended:
            return []
        if not line:
            return self._dispatch()
        if line.startswith(b"data:"):
            data = line[len(b"data:") :]
            self._data_lines.append(data[1:] if data.startswith(b" ") else data)
            self._data_size += len(data)
            if self._data_size > self._event_limit:
                self._data_lines, self._data_size = [], 0
        return []

    def _dispatch(self) -> list[bytes]:
        """The frames of the event whose `data:` lines were collected (an SSE event ends at a blank line)."""
        data = b"\n".join(self._data_lines)
        self._data_lines, self._data_size = [], 0
        if not data or self.ended:
            return []
        if data.strip() == b"[DONE]":
            return self._complete()
        try:
            chunk = json.loads(data)
        except ValueError:
            return []
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error") is not None:
            return self._failed(chunk["error"], data)
        return self._read_chunk(chunk)

    def _read_chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        if not self._id_taken and isinstance(chunk.get("id"), str) and chunk["id"]:
            self._id = response_id(chunk["id"])
            self._id_taken = True
        self._model = _model(chunk.get("model"), self._model)
        if isinstance(chunk.get("created"), int) and not isinstance(chunk["created"], bool):
            self._created_at = chunk["created"]
        frames: list[bytes] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                frames += [*self._start(), self._text_delta(content)]
            if choice.get("finish_reason") is not None:
                return frames + self._complete()
        return frames

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        # Clients key the events by the id `response.created` announced; a later chunk's id cannot change it.
        self._id_taken = True
        response = _response_object(
            self._id, created_at=self._created_at, model=self._model, status="in_progress", output=[]
        )
        return [
            event_frame({"type": "response.created", "response": response}),
            event_frame(
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": _message_item(self._id, "in_progress", None),
                }
            ),
            event_frame({**self._position("response.content_part.added"), "part": _output_text_part("")}),
        ]

    def _text_delta(self, content: str) -> bytes:
        self._texts.append(content)
        return event_frame({**self._position("response.output_text.delta"), "delta": content})

    def _complete(self) -> list[bytes]:
        if self.ended:
            return []
        frames = self._start()
        self.ended = True
        self.completed = True
        text = "".join(self._texts)
        item = _message_item(self._id, "completed", text)
        response = _response_object(
            self._id, created_at=self._created_at, model=self._model, status="completed", output=[item]
        )
        response["output_text"] = text
        return [
            *frames,
            event_frame({**self._position("response.output_text.done"), "text": text}),
            event_frame({**self._position("response.content_part.done"), "part": _output_text_part(text)}),
            event_frame({"type": "response.output_item.done", "output_index": 0, "item": item}),
            event_frame({"type": "response.completed", "response": response}),
        ]

    def _failed(self, error: Any, data: bytes) -> list[bytes]:
        self.ended = True
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = data.decode("utf-8", errors="replace")
        self.error = message
        return [error_frame(message, "upstream_unavailable" if code is None else code)]

    def _position(self, event_type: str) -> dict[str, Any]:
        return {"type": event_type, "item_id": f"{self._id}_msg", "output_index": 0, "content_index": 0}
