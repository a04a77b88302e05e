"""The OpenAPI schema's own parts: REST names and tags, and the routes that are not DRF views, by hand.

drf-spectacular describes the REST views from their serializers (AutoSchema names and tags them). The
streams, the /api/bots/ bridge, the participant routes and the LLM proxy are plain async Django views (an
SSE stream or a byte-for-byte relay has no serializer), so `postprocess_schema` writes them from the spec
(events.md, participants.md, llm-bridge.md) and marks each with HANDWRITTEN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import get_lib_doc_excludes

# Marks every operation written here: readers and tools can tell it from those drf-spectacular derives.
HANDWRITTEN = "x-csgclaw-handwritten"
BEARER = "bearer"
# Left out of operation ids, as drf-spectacular leaves SCHEMA_PATH_PREFIX out of those it makes.
_API_PREFIX = re.compile(r"^/api/(v[0-9]+/)?")

_ERROR_TEXTS = {
    400: "bad input: the message says which check failed",
    401: "unauthorized",
    404: "404 page not found, or the named object does not exist",
    405: "method not allowed",
    413: "request body too large",
    502: "the upstream provider failed: send upstream request: …",
    503: "not available right now (too many open streams, models config is unavailable: …)",
    504: "upstream request timed out",
}
_ERROR_BODY = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["status", "message"],
        }
    },
    "required": ["error"],
}
_EVENT_STREAM_TEXT = (
    "`text/event-stream`: `: connected` first, then one frame per event (`id:`, optional `event:`, one "
    "`data:` line of compact JSON) and a comment heartbeat when idle. The stream ends after "
    "`CSGCLAW_SSE_MAX_LIFETIME` seconds; reconnect with `Last-Event-ID` to resume."
)
_OVERHEAD_HEADER = {
    "X-CSGClaw-Overhead-Ms": {
        "description": "time the server spent before relaying the provider's answer",
        "schema": {"type": "string"},
    }
}

_CHAT_REQUEST = {
    "type": "object",
    "description": "An OpenAI chat completions request. `model` is replaced by the agent's model; "
    "`reasoning_effort` is added when absent; every other field is passed through unchanged.",
    "properties": {
        "model": {"type": "string", "description": "ignored: the server sets the agent's model"},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"role": {"type": "string"}, "content": {}},
                "additionalProperties": True,
            },
        },
        "stream": {"type": "boolean", "description": "true: the answer is relayed as an event stream"},
        "stream_options": {"type": "object", "additionalProperties": True},
        "reasoning_effort": {"type": "string", "nullable": True},
        "tools": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "temperature": {"type": "number"},
        "max_tokens": {"type": "integer"},
    },
    "additionalProperties": True,
}
_CHAT_RESPONSE = {
    "type": "object",
    "description": "The provider's answer, relayed byte for byte.",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "example": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "properties": {
                            "role": {"type": "string"},
                            "content": {"type": "string", "nullable": True},
                        },
                        "additionalProperties": True,
                    },
                    "finish_reason": {"type": "string", "nullable": True},
                },
                "additionalProperties": True,
            },
        },
        "usage": {
            "type": "object",
            "properties": {
                "prompt_tokens": {"type": "integer"},
                "completion_tokens": {"type": "integer"},
                "total_tokens": {"type": "integer"},
            },
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}
_RESPONSES_REQUEST = {
    "type": "object",
    "description": "An OpenAI Responses API request. `model` is replaced by the agent's model (no "
    "`reasoning_effort` is added); every other field is passed through unchanged. For a provider without "
    "the Responses API it is converted to chat completions: `instructions` and `input` become messages, "
    "sampling fields are copied, `max_output_tokens` becomes `max_tokens`; tool-use history cannot be "
    "converted (400).",
    "properties": {
        "model": {"type": "string", "description": "ignored: the server sets the agent's model"},
        "input": {
            "description": "a string, or an array of strings and message items",
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {}},
            ],
        },
        "instructions": {"type": "string"},
        "stream": {"type": "boolean", "description": "true: the answer is an event stream"},
        "max_output_tokens": {"type": "integer"},
        "temperature": {"type": "number"},
        "tools": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "tool_choice": {},
        "reasoning": {"type": "object", "additionalProperties": True},
        "previous_response_id": {"type": "string"},
    },
    "additionalProperties": True,
}
_RESPONSES_RESPONSE = {
    "type": "object",
    "description": "The provider's `response` object relayed byte for byte, or the one converted from its "
    "chat completion (`id` `resp_<chat id>`, one assistant message, `output_text`, the chat `usage`).",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "example": "response"},
        "created_at": {"type": "integer"},
        "status": {"type": "string"},
        "model": {"type": "string"},
        "output": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "output_text": {"type": "string"},
        "usage": {"type": "object", "additionalProperties": True},
    },
    "additionalProperties": True,
}
_MODEL_LIST = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "the agent's resolved model id"},
                    "object": {"type": "string", "enum": ["model"]},
                    "created": {"type": "integer"},
                    "owned_by": {"type": "string", "enum": ["csgclaw"]},
                },
                "required": ["id", "object", "created", "owned_by"],
            },
            "minItems": 1,
            "maxItems": 1,
        },
    },
    "required": ["object", "data"],
}
_MESSAGE_ID = {
    "type": "object",
    "properties": {"message_id": {"type": "string", "example": "msg-1745489100000000000"}},
    "required": ["message_id"],
}
_BOT_SEND = {
    "type": "object",
    "properties": {
        "room_id": {"type": "string"},
        "chat_id": {"type": "string", "description": "used when room_id is blank (older PicoClaw builds)"},
        "text": {"type": "string"},
    },
}
_PARTICIPANT_SEND = {
    "type": "object",
    "description": "The room is the first non-blank of room_id, chat_id, context.chat_id; the text is "
    "text, else content.",
    "properties": {
        "room_id": {"type": "string"},
        "chat_id": {"type": "string"},
        "context": {
            "type": "object",
            "properties": {"chat_id": {"type": "string"}, "topic_id": {"type": "string"}},
            "additionalProperties": True,
        },
        "text": {"type": "string"},
        "content": {"type": "string"},
        "thread_root_id": {"type": "string"},
        "topic_id": {"type": "string"},
        "message_id": {
            "type": "string",
            "description": "the caller's id: reusing your own replaces that message",
        },
        "metadata": {"type": "object", "additionalProperties": True},
    },
}


# The same body as multipart/form-data with attachments (threads-attachments.md §2.4).
_MULTIPART_SEND = {
    "type": "object",
    "properties": {
        "payload": {"type": "string", "description": "the JSON object of the JSON body"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": 10},
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
    "required": ["payload"],
}


def lib_doc_excludes() -> list[type]:
    """drf-spectacular's GET_LIB_DOC_EXCLUDES, plus the house's base classes in core.api.

    Their docstrings explain the code to its readers; without this, every view and serializer that has no
    docstring of its own would show its base class's in the schema.
    """
    from core import api

    house = [
        value for value in vars(api).values() if isinstance(value, type) and value.__module__ == api.__name__
    ]
    return [*get_lib_doc_excludes(), *house]


class AutoSchema(SpectacularAutoSchema):
    """Tags each REST route with its app, and names a nested serializer after its view, so that each view's
    `InputSerializer` gets its own component."""

    def get_tags(self) -> list[str]:
        """The app that serves the route: im, agents or bots."""
        return [type(self.view).__module__.split(".", 1)[0]]

    def get_operation_id(self) -> str:
        """`…_list` for a GET that answers a collection wrapped in an object (a page), which drf-spectacular
        would name `…_retrieve` like the item route below it; such views list the method in
        `collection_methods`."""
        operation_id = super().get_operation_id()
        if self.method.lower() in getattr(self.view, "collection_methods", ()):
            return operation_id.removesuffix("_retrieve") + "_list"
        return operation_id

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        *outer, name = type(serializer).__qualname__.split(".")
        if outer:
            return outer[-1].removesuffix("View") + name
        return name


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_BOT_ID = _path_parameter("bot_id", "the bot's id (an agent id such as `u-alice`)")
_AGENT_NAME = _path_parameter(
    "agent_id", "any name of the agent: `u-alice`, `pt-alice`, `agent-alice`, `alice`"
)
_PARTICIPANT = _path_parameter("participant_id", "`pt-<name>`, `u-<name>`, `agent-<name>` or the bare name")
_FEISHU_PARTICIPANT = _path_parameter("participant_id", "the Feishu bot's id, as in `[channels.feishu.<id>]`")
_FEISHU_BOT = _path_parameter("bot_id", "the Feishu bot's id, as in `[channels.feishu.<id>]`")
_CURSOR_PARAMETERS = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "resume after this event (a seq, or a message id `msg-…`)",
    },
    {
        "name": "last_event_id",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "the same, for clients that cannot set headers",
    },
]


def _errors(*statuses: int) -> dict[str, Any]:
    """Error answers: the message and a newline as plain text, or JSON when Accept names application/json."""
    return {
        str(status): {
            "description": _ERROR_TEXTS[status],
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
            },
        }
        for status in statuses
    }


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _operation(
    *,
    tag: str,
    summary: str,
    responses: dict[str, Any],
    parameters: Sequence[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    multipart_body: dict[str, Any] | None = None,
    bearer: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"tags": [tag], "summary": summary, HANDWRITTEN: True}
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        if multipart_body is not None:
            operation["requestBody"]["content"]["multipart/form-data"] = {"schema": multipart_body}
    operation["responses"] = responses
    if bearer:
        operation["security"] = [{BEARER: []}]
    return operation


def _stream(*, summary: str, frames: str, parameters: Sequence[dict[str, Any]], errors: tuple[int, ...]):
    """A GET that answers an event stream; a bearer is needed when it can answer 401."""
    responses = {
        "200": {
            "description": f"{_EVENT_STREAM_TEXT} {frames}",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_errors(*errors),
        "503": {
            "description": "too many open streams",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
            "content": _errors(503)["503"]["content"],
        },
    }
    operation = _operation(
        tag="streams", summary=summary, parameters=parameters, responses=responses, bearer=401 in errors
    )
    return {"get": operation}


def _llm_models(parameter: dict[str, Any]) -> dict[str, Any]:
    responses = {
        "200": _json(_MODEL_LIST, "one entry: the agent's model", _OVERHEAD_HEADER),
        **_errors(401, 404, 405, 503),
    }
    return {
        "get": _operation(
            tag="llm proxy",
            summary="The agent's model (OpenAI models list)",
            parameters=[parameter],
            responses=responses,
        )
    }


def _llm_chat(parameter: dict[str, Any]) -> dict[str, Any]:
    ok = _json(_CHAT_RESPONSE, "the provider's answer", _OVERHEAD_HEADER)
    ok["content"]["text/event-stream"] = {
        "schema": {
            "type": "string",
            "description": "with `stream: true`: the provider's `data: {chat.completion.chunk}` frames as "
            "they arrive, then `data: [DONE]`; a failure after the start ends it with one "
            '`data: {"error":{"message":"…","type":"upstream_error","code":502}}` frame',
        }
    }
    responses = {
        "200": ok,
        **_errors(400, 401, 404, 405, 413, 502, 503, 504),
        "default": {
            "description": "a provider error, relayed with its own status and body",
            "headers": _OVERHEAD_HEADER,
        },
    }
    return {
        "post": _operation(
            tag="llm proxy",
            summary="Chat completions through the agent's model (OpenAI-compatible)",
            parameters=[parameter],
            body=_CHAT_REQUEST,
            responses=responses,
        )
    }


def _llm_responses() -> dict[str, Any]:
    """POST: the Responses API (participants.md §5.5–§5.6); GET: its WebSocket variant, not supported."""
    ok = _json(_RESPONSES_RESPONSE, "the provider's answer, or the converted chat answer", _OVERHEAD_HEADER)
    ok["content"]["text/event-stream"] = {
        "schema": {
            "type": "string",
            "description": "with `stream: true`: `event: <type>` + `data: {…}` frames (`response.created`, "
            "`response.output_text.delta`, …, `response.completed`) as they arrive; a failure after the "
            'start ends it with `event: error` + `data: {"type":"error","code":"upstream_error",'
            '"message":"…","param":null}`',
        }
    }
    responses = {
        "200": ok,
        **_errors(400, 401, 404, 405, 413, 502, 503, 504),
        "default": {
            "description": "a provider error, relayed with its own status and body",
            "headers": _OVERHEAD_HEADER,
        },
    }
    return {
        "post": _operation(
            tag="llm proxy",
            summary="The OpenAI Responses API through the agent's model, converted to chat completions "
            "for providers without it",
            parameters=[_AGENT_NAME],
            body=_RESPONSES_REQUEST,
            responses=responses,
        ),
        "get": _operation(
            tag="llm proxy",
            summary="The Responses API's WebSocket variant: not supported",
            parameters=[_AGENT_NAME],
            responses=_errors(400, 401, 404, 405),
        ),
    }


def _im_stream() -> dict[str, Any]:
    return _stream(
        summary="Every IM change (message.created, room.*, user.*, agent.updated)",
        frames='Frames carry no `event:` line: `data: {"type": "message.created", …}`.',
        parameters=_CURSOR_PARAMETERS,
        errors=(405,),
    )


def _handwritten_paths() -> dict[str, dict[str, Any]]:
    bot_llm = "/api/bots/{bot_id}/llm"
    agent_llm = "/api/v1/agents/{agent_id}/llm"
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {
            "get": _operation(
                tag="health",
                summary="Liveness: no database access (every method is answered)",
                responses={
                    "200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
                bearer=False,
            )
        },
        "/api/v1/im/events": _im_stream(),
        "/api/v1/events": _im_stream(),
        "/api/bots/{bot_id}/events": _stream(
            summary="Messages for one bot: its direct rooms, and group messages that mention it",
            frames="`event: message`, `data:` with message_id, room_id, chat_id, chat_type, sender, text, "
            "timestamp (Unix ms) and mentions.",
            parameters=[_BOT_ID, *_CURSOR_PARAMETERS],
            errors=(401, 404, 405),
        ),
        "/api/bots/{bot_id}/messages/send": {
            "post": _operation(
                tag="bot bridge",
                summary="Post into a room as the bot",
                parameters=[_BOT_ID],
                body=_BOT_SEND,
                multipart_body=_MULTIPART_SEND,
                responses={
                    "200": _json(_MESSAGE_ID, "the new message's id"),
                    **_errors(400, 401, 404, 405, 413),
                },
            )
        },
        "/api/v1/channels/csgclaw/participants/{participant_id}/events": _stream(
            summary="A participant's deliveries (PicoClaw 2026.6 and later)",
            frames="`id: <message id>`, `event: message`; heartbeat `: heartbeat`; no reset frame.",
            parameters=[_PARTICIPANT, *_CURSOR_PARAMETERS],
            errors=(401, 404, 405),
        ),
        "/api/v1/channels/feishu/participants/{participant_id}/events": _stream(
            summary="The Feishu relay stream under its participant name",
            frames='`data: {"type": "message.created", "room_id": <chat id>, "message": {…}}`.',
            parameters=[_FEISHU_PARTICIPANT, *_CURSOR_PARAMETERS],
            errors=(400, 401, 404, 405),
        ),
        "/api/v1/channels/feishu/bots/{bot_id}/events": _stream(
            summary="Feishu mention messages relayed to the mentioned bot",
            frames='`data: {"type": "message.created", "room_id": <chat id>, "message": {…}}`.',
            parameters=[_FEISHU_BOT, *_CURSOR_PARAMETERS],
            errors=(400, 401, 404, 405),
        ),
        "/api/v1/channels/csgclaw/participants/{participant_id}/messages": {
            "post": _operation(
                tag="bot bridge",
                summary="Post as a participant",
                parameters=[_PARTICIPANT],
                body=_PARTICIPANT_SEND,
                multipart_body=_MULTIPART_SEND,
                responses={"200": _json(_MESSAGE_ID, "the message's id"), **_errors(400, 401, 404, 405, 413)},
            )
        },
        f"{agent_llm}/responses": _llm_responses(),
        f"{agent_llm}/v1/responses": _llm_responses(),
    }
    for prefix, parameter in ((bot_llm, _BOT_ID), (agent_llm, _AGENT_NAME)):
        for version in ("", "/v1"):
            paths[f"{prefix}{version}/models"] = _llm_models(parameter)
            paths[f"{prefix}{version}/chat/completions"] = _llm_chat(parameter)
    return paths


def _operation_id(path: str, method: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', _API_PREFIX.sub('', path)).strip('_')}_{method}"


def postprocess_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular's POSTPROCESSING_HOOKS entry: adds the hand-written routes, marks every request body
    required, gives every route with a path id its 404, and puts the bearer scheme on every route that can
    answer 401."""
    handwritten = _handwritten_paths()
    for path, operations in handwritten.items():
        for method, operation in operations.items():
            operation["operationId"] = _operation_id(path, method)
    result["paths"] = dict(sorted({**result.get("paths", {}), **handwritten}.items()))
    for operations in result["paths"].values():
        for operation in operations.values():
            # The contract answers a missing body with 400 `decode request: EOF` (http-api.md §1.2).
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            # A path id that is empty once trimmed is 404 `404 page not found` (http-api.md §1.1).
            if any(parameter.get("in") == "path" for parameter in operation.get("parameters", [])):
                operation["responses"].setdefault("404", _errors(404)["404"])
            # A REST route that can answer 401 takes the server token even from this machine.
            if "401" in operation.get("responses", {}):
                operation["security"] = [{BEARER: []}]
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("ErrorBody", _ERROR_BODY)
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "`[server].access_token`, or an agent's own token on that agent's routes. Callers on "
        "this machine need none on the REST routes and the IM stream.",
    }
    return result
