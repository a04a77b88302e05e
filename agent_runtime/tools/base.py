"""What every tool is made of: its schema, the turn it runs in, and argument checks (§5.1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_runtime.contracts import OutboundFile, RestClient, SendResult, Settings


class SendFn(Protocol):
    """Posts through the turn's outbox; the turn counts ids and links origins."""

    async def __call__(
        self, room_id: str, thread_root_id: str, text: str, *, file: OutboundFile | None = None
    ) -> SendResult: ...


@dataclass(frozen=True)
class ToolContext:
    """The running turn as a tool sees it."""

    settings: Settings
    rest: RestClient
    room_id: str
    thread_root_id: str
    send: SendFn


Runner = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    run: Runner
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": self.properties,
                    "required": list(self.required),
                },
            },
        }


def string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def integer(description: str, minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "integer", "description": description}
    if minimum is not None:
        spec["minimum"] = minimum
    if maximum is not None:
        spec["maximum"] = maximum
    return spec


def boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


class InvalidArguments(Exception):
    """Arguments that do not fit the tool's schema; the text follows `Error: invalid arguments: `."""


def _check(name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec["type"]
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidArguments(f'"{name}" must be a string')
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidArguments(f'"{name}" must be a boolean')
        return value
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArguments(f'"{name}" must be an integer')
        if "minimum" in spec and value < spec["minimum"]:
            raise InvalidArguments(f'"{name}" must be at least {spec["minimum"]}')
        if "maximum" in spec and value > spec["maximum"]:
            raise InvalidArguments(f'"{name}" must be at most {spec["maximum"]}')
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidArguments(f'"{name}" must be an array of strings')
    return value


def checked_arguments(tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
    """`args` with known parameters type-checked; nulls count as absent, unknown keys are dropped."""
    clean: dict[str, Any] = {}
    for name, spec in tool.properties.items():
        value = args.get(name)
        if value is None:
            continue
        clean[name] = _check(name, spec, value)
    for name in tool.required:
        if name not in clean:
            raise InvalidArguments(f'missing required parameter "{name}"')
    return clean
