"""The Responses API of the agent-scoped LLM proxy (participants.md §5.5–§5.6).

The conversions of bots/llm/responses.py as pure functions, then the routes over ASGI against a
respx-mocked provider: pass-through, the chat-completions fallback and its memory, usage rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from bots.llm import responses
from bots.llm.responses import (
    INPUT_REQUIRED_TEXT,
    TOOL_HISTORY_TEXT,
    ChatStreamConverter,
    chat_request_from_responses,
    response_from_chat,
    response_id,
)
from bots.llm.usage import (
    RESPONSES_TOKEN_FIELDS,
    JsonUsageTap,
    ResponsesEventStreamUsageTap,
    Usage,
)
from bots.llm.views import MAX_BODY_BYTES, OVERHEAD_HEADER
from bots.models import LlmOutcome
from bots.tests.llm_bridge import (
    AGENT_ID,
    BASE_URL,
    MODEL,
    PROVIDER_KEY,
    ProviderStream,
    body_chunk,
    call,
    client_leaves,
    header_map,
    open_call,
    sse,
    usage_rows,
)
from core.http import ApiError

pytestmark = [pytest.mark.timeout(20)]

RESPONSES_URL = f"{BASE_URL}/responses"
CHAT_URL = f"{BASE_URL}/chat/completions"
PATHS = [f"/api/v1/agents/{AGENT_ID}/llm/responses", f"/api/v1/agents/{AGENT_ID}/llm/v1/responses"]
RESPONSES = PATHS[0]
RESPONSE_USAGE = {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}
CHAT_USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
ANSWER = {
    "id": "resp_abc",
    "object": "response",
    "status": "completed",
    "output_text": "hello",
    "usage": RESPONSE_USAGE,
}
CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": CHAT_USAGE,
}
NOT_FOUND = httpx.Response(404, json={"error": {"message": "not found"}})


def responses_body(**fields: Any) -> dict[str, Any]:
    return {"model": "openai/client-model", "input": "hi", **fields}


def chunk(content: str | None = None, *, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        **fields,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def events_of(body: bytes) -> list[dict[str, Any]]:
    """The Responses frames of a body, each checked to name its type on both lines."""
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        events.append(event)
    return events


def converted(*chunks: dict[str, Any] | str, model_id: str = MODEL) -> list[dict[str, Any]]:
    converter = ChatStreamConverter(model_id=model_id, event_limit=MAX_BODY_BYTES)
    frames = [frame for raw in sse(*chunks) for frame in converter.feed(raw)] + converter.finish()
    return events_of(b"".join(frames))


# --- request conversion (§5.6 items 1–3) -----------------------------------------------------------------


@pytest.mark.parametrize("tool_choice", ["none", "auto", {"type": "none"}, "", None, {}])
def test_a_neutral_tool_choice_converts(tool_choice):
    assert chat_request_from_responses(responses_body(tool_choice=tool_choice))["messages"] == [
        {"role": "user", "content": "hi"}
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"tool_choice": "required"},
        {"tool_choice": {"type": "function", "name": "lookup"}},
        {"input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}]},
        {"input": [{"type": "function_call", "name": "lookup", "arguments": "{}"}]},
        {"input": [{"type": "custom_tool_call_output"}]},
        {"input": [{"type": "web_search_call"}]},
        {"input": [{"type": "mcp_list_tools"}]},
        {
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x", "extra": {"type": "x_call"}}],
                }
            ]
        },
        {"input": [{"role": "tool", "content": "42"}]},
        {"input": [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]}]},
        {"input": [{"role": "assistant", "content": "x", "function_call": {"name": "f"}}]},
        {"input": [{"role": "user", "content": "x", "tool_call_id": "c1"}]},
        {"input": [{"call_id": "c1", "output": "42"}]},
    ],
)
def test_tool_use_history_is_refused(fields):
    with pytest.raises(ApiError) as refused:
        chat_request_from_responses(responses_body(**fields))

    assert (refused.value.status, refused.value.message) == (400, TOOL_HISTORY_TEXT)


def test_empty_tool_fields_and_tool_definitions_are_no_tool_use_history():
    body = responses_body(
        tools=[{"type": "function", "name": "lookup"}],
        input=[
            {"role": "assistant", "content": "x", "tool_calls": [], "function_call": None, "call_id": "c"}
        ],
    )

    assert chat_request_from_responses(body)["messages"] == [{"role": "assistant", "content": "x"}]


def test_messages_follow_the_instructions_and_the_input_items():
    body = responses_body(
        instructions="be brief",
        input=[
            "plain",
            {"role": "developer", "content": "dev"},
            {"role": "system", "content": [{"type": "input_text", "text": "sys"}]},
            {"role": "latest_reminder", "content": "remind"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "a"}, {"content": "b"}]},
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "u1"}, {"type": "input_text", "text": "u2"}],
            },
            {"role": "critic", "content": "other role"},
            {"type": "message", "text": "item text"},
            {"role": "user", "content": "   "},
            "  ",
            {"role": "user", "content": [{"type": "input_image", "image_url": "x"}]},
            42,
        ],
    )

    assert chat_request_from_responses(body)["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "plain"},
        {"role": "system", "content": "dev"},
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "remind"},
        {"role": "assistant", "content": "ab"},
        {"role": "user", "content": "u1u2"},
        {"role": "user", "content": "other role"},
        {"role": "user", "content": "item text"},
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"input": "   "},
        {"input": None, "instructions": "  "},
        {"input": []},
        {"input": [{"role": "user", "content": ""}]},
        {"input": {"role": "user", "content": "an object is no input"}},
    ],
)
def test_no_message_is_400(fields):
    with pytest.raises(ApiError) as refused:
        chat_request_from_responses(responses_body(**fields))

    assert (refused.value.status, refused.value.message) == (400, INPUT_REQUIRED_TEXT)


def test_instructions_alone_make_a_message():
    body = {"model": MODEL, "instructions": "say hi"}

    assert chat_request_from_responses(body)["messages"] == [{"role": "system", "content": "say hi"}]


def test_sampling_fields_are_copied_and_the_rest_dropped():
    copied = {
        "stream": True,
        "temperature": 0.2,
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "stop": ["\n"],
        "seed": 7,
        "response_format": {"type": "json_object"},
        "user": "u-1",
    }
    body = responses_body(
        **copied,
        max_output_tokens=64,
        reasoning={"effort": "high"},
        previous_response_id="resp_1",
        store=False,
        tools=[],
    )

    assert chat_request_from_responses(body) == {
        "model": "openai/client-model",
        "messages": [{"role": "user", "content": "hi"}],
        **copied,
        "max_tokens": 64,
    }


def test_null_fields_are_not_copied():
    body = responses_body(temperature=None, max_output_tokens=None, stream=None)

    assert chat_request_from_responses(body) == {
        "model": "openai/client-model",
        "messages": [{"role": "user", "content": "hi"}],
    }


# --- answer conversion (§5.6 items 5–6) -------------------------------------------------------------------


def test_a_chat_answer_becomes_a_response_object():
    assert response_from_chat(CHAT_ANSWER, model_id="resolved") == {
        "id": "resp_chatcmpl-1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": MODEL,
        "output": [
            {
                "id": "resp_chatcmpl-1_msg",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hello", "annotations": []}],
            }
        ],
        "output_text": "hello",
        "usage": {**CHAT_USAGE, "input_tokens": 3, "output_tokens": 5},
    }


def test_a_sparse_chat_answer_takes_the_defaults(monkeypatch):
    monkeypatch.setattr(responses.time, "time", lambda: 1234.5)
    monkeypatch.setattr(responses.time, "time_ns", lambda: 99)

    answer = response_from_chat({"choices": []}, model_id="resolved")

    assert (answer["id"], answer["created_at"], answer["model"]) == ("resp_csgclaw_99", 1234, "resolved")
    assert answer["output_text"] == ""
    assert answer["output"][0]["id"] == "resp_csgclaw_99_msg"
    assert "usage" not in answer


def test_content_parts_are_concatenated():
    answer = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}

    assert response_from_chat(answer, model_id=MODEL)["output_text"] == "ab"


@pytest.mark.parametrize(
    ("chat_id", "expected"), [("chatcmpl-9", "resp_chatcmpl-9"), ("resp_7", "resp_7"), ("", None), (5, None)]
)
def test_the_response_id_rule(chat_id, expected):
    identifier = response_id(chat_id)

    if expected is None:
        assert re.fullmatch(r"resp_csgclaw_\d+", identifier)
    else:
        assert identifier == expected


@pytest.mark.parametrize("answer", [[1, 2], "text", None])
def test_a_chat_answer_that_is_no_object_does_not_convert(answer):
    with pytest.raises(ValueError):
        response_from_chat(answer, model_id=MODEL)


def test_a_chat_stream_becomes_the_responses_event_sequence():
    events = converted(
        chunk("", id="chatcmpl-7", model="m-1", created=1700000001, role="assistant"),
        chunk("Hel"),
        chunk("lo"),
        chunk(finish="stop"),
        "[DONE]",
    )

    item_id = "resp_chatcmpl-7_msg"
    position = {"item_id": item_id, "output_index": 0, "content_index": 0}
    done_item = {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
    }
    assert events == [
        {
            "type": "response.created",
            "response": {
                "id": "resp_chatcmpl-7",
                "object": "response",
                "created_at": 1700000001,
                "status": "in_progress",
                "model": "m-1",
                "output": [],
            },
        },
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {
            "type": "response.content_part.added",
            **position,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {"type": "response.output_text.delta", **position, "delta": "Hel"},
        {"type": "response.output_text.delta", **position, "delta": "lo"},
        {"type": "response.output_text.done", **position, "text": "Hello"},
        {
            "type": "response.content_part.done",
            **position,
            "part": {"type": "output_text", "text": "Hello", "annotations": []},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": done_item},
        {
            "type": "response.completed",
            "response": {
                "id": "resp_chatcmpl-7",
                "object": "response",
                "created_at": 1700000001,
                "status": "completed",
                "model": "m-1",
                "output": [done_item],
                "output_text": "Hello",
            },
        },
    ]


def test_each_frame_leaves_with_the_chunk_that_completes_it():
    converter = ChatStreamConverter(model_id=MODEL, event_limit=MAX_BODY_BYTES)
    raw = b"".join(sse(chunk("a", id="c1"), chunk("b")))
    cut = raw.index(b'"b"')

    first = events_of(b"".join(converter.feed(raw[:cut])))
    second = events_of(b"".join(converter.feed(raw[cut:])))

    assert [event["type"] for event in first] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert [event.get("delta") for event in second] == ["b"]
    assert not converter.completed


def test_the_end_comes_once_whichever_marker_comes_first():
    by_finish = converted(chunk("a"), chunk(finish="length"), chunk("late"), "[DONE]")
    by_done = converted(chunk("a"), "[DONE]", chunk("late"))
    by_end = converted(chunk("a"))

    for events in (by_finish, by_done, by_end):
        types = [event["type"] for event in events]
        assert types.count("response.completed") == 1
        assert types[-1] == "response.completed"
        assert events[-1]["response"]["output_text"] == "a"


def test_a_stream_without_text_still_opens_and_completes_the_message(monkeypatch):
    monkeypatch.setattr(responses.time, "time_ns", lambda: 42)

    events = converted(chunk(finish="stop"))

    assert [event["type"] for event in events] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["id"] == "resp_csgclaw_42"
    assert (events[0]["response"]["model"], events[-1]["response"]["output_text"]) == (MODEL, "")


def test_the_id_comes_from_the_first_chunk_that_has_one():
    events = converted(chunk(""), chunk("a", id="chatcmpl-first"), chunk("b", id="chatcmpl-second"))

    assert {event["response"]["id"] for event in events if "response" in event} == {"resp_chatcmpl-first"}
    assert events[1]["item"]["id"] == "resp_chatcmpl-first_msg"


def test_an_id_arriving_after_the_response_was_announced_does_not_change_it(monkeypatch):
    monkeypatch.setattr(responses.time, "time_ns", lambda: 7)

    events = converted(chunk("a"), chunk("b", id="chatcmpl-late"), chunk(finish="stop"))

    assert {event["response"]["id"] for event in events if "response" in event} == {"resp_csgclaw_7"}
    assert {event["item_id"] for event in events if "item_id" in event} == {"resp_csgclaw_7_msg"}


def test_crlf_lines_and_comments_are_read():
    converter = ChatStreamConverter(model_id=MODEL, event_limit=MAX_BODY_BYTES)
    raw = b': keep-alive\r\n\r\ndata: {"choices":[{"delta":{"content":"x"}}]}\r\n\r\ndata: [DONE]\r\n\r\n'

    events = events_of(b"".join(converter.feed(raw)))

    assert events[3]["delta"] == "x"
    assert events[-1]["type"] == "response.completed"


def test_an_event_over_the_limit_is_dropped_and_the_next_one_read():
    converter = ChatStreamConverter(model_id=MODEL, event_limit=200)
    oversized = json.dumps(chunk("x" * 300)).encode()
    split_lines = b"data: " + oversized[:150] + b"\ndata: " + oversized[150:] + b"\n\n"

    frames = converter.feed(b"data: " + oversized[:250])
    frames += converter.feed(oversized[250:] + b"\n\n" + split_lines + sse(chunk("ok"))[0])

    assert [event.get("delta") for event in events_of(b"".join(frames))][-1:] == ["ok"]
    assert "x" * 300 not in b"".join(frames).decode()


@pytest.mark.parametrize(
    ("error_chunk", "code", "message"),
    [
        (
            {"error": {"message": "quota exceeded", "code": "insufficient_quota"}},
            "insufficient_quota",
            "quota exceeded",
        ),
        ({"error": {"message": "boom", "code": 500}}, 500, "boom"),
        ({"error": {"message": "boom"}}, "upstream_unavailable", "boom"),
        ({"error": "overloaded"}, "upstream_unavailable", '{"error": "overloaded"}'),
    ],
)
def test_an_error_chunk_ends_the_stream_with_an_error_event(error_chunk, code, message):
    converter = ChatStreamConverter(model_id=MODEL, event_limit=MAX_BODY_BYTES)
    frames = [frame for raw in sse(chunk("a"), error_chunk, chunk("b")) for frame in converter.feed(raw)]
    frames += converter.finish()

    events = events_of(b"".join(frames))

    assert events[-1] == {"type": "error", "code": code, "message": message, "param": None}
    assert [event["type"] for event in events].count("response.output_text.delta") == 1
    assert "response.completed" not in [event["type"] for event in events]
    assert (converter.error, converter.completed) == (message, False)


# --- usage taps of Responses answers (§5.5) ---------------------------------------------------------------


def test_responses_stream_usage_is_the_last_completed_response():
    completed = {"type": "response.completed", "response": {"id": "r", "usage": RESPONSE_USAGE}}
    stream = b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        for event in (
            {"type": "response.output_text.delta", "delta": "usage is not parsed here"},
            {"type": "response.in_progress", "response": {"usage": {"input_tokens": 1}}},
            completed,
        )
    )
    tap = ResponsesEventStreamUsageTap(MAX_BODY_BYTES)

    for index in range(0, len(stream), 7):
        tap.feed(stream[index : index + 7])

    assert tap.delivered
    assert tap.usage() == Usage(4, 6, 10)


def test_a_responses_stream_cut_before_completion_is_not_delivered():
    tap = ResponsesEventStreamUsageTap(MAX_BODY_BYTES)
    tap.feed(
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"x"}\n\n'
    )

    assert (tap.delivered, tap.usage()) == (False, None)


def test_a_responses_json_answer_reads_input_and_output_tokens():
    tap = JsonUsageTap(MAX_BODY_BYTES, RESPONSES_TOKEN_FIELDS)
    tap.feed(json.dumps(ANSWER).encode())

    assert tap.usage() == Usage(4, 6, 10)


# --- the routes over ASGI ---------------------------------------------------------------------------------


@pytest.fixture
def provider_routes() -> Iterator[tuple[respx.Route, respx.Route]]:
    """(the provider's /responses, its /chat/completions); the fallback memory starts empty."""
    responses.providers_without_responses_api.clear()
    with respx.mock(assert_all_called=False) as router:
        yield router.post(RESPONSES_URL), router.post(CHAT_URL)
    responses.providers_without_responses_api.clear()


@pytest.fixture
def responses_route(provider_routes) -> respx.Route:
    return provider_routes[0]


@pytest.fixture
def chat_route(provider_routes) -> respx.Route:
    return provider_routes[1]


def sent(route: respx.Route, index: int = -1) -> dict[str, Any]:
    return json.loads(route.calls[index].request.content)


def event_stream(stream: Any) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)


def response_events(*events: dict[str, Any]) -> list[bytes]:
    return [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events]


routes_db = pytest.mark.usefixtures("default_config", "settle_usage_writes")
db = pytest.mark.django_db(transaction=True)


@db
@routes_db
@pytest.mark.parametrize("path", PATHS)
async def test_a_json_answer_is_relayed_from_the_providers_responses(
    agent, responses_route, chat_route, path
):
    raw = json.dumps(ANSWER, indent=1).encode()
    responses_route.mock(
        return_value=httpx.Response(200, content=raw, headers={"content-type": "application/json"})
    )
    body = responses_body(reasoning={"effort": "low"}, previous_response_id="resp_0", tools=[], unknown=1)

    response = await call(path, body, headers={"x-secret": "no"})

    assert (response.status, response.body) == (200, raw)
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers[OVERHEAD_HEADER.lower()]) >= 0
    # `model` is the agent's; no `reasoning_effort` although the provider has one; the rest is kept.
    assert sent(responses_route) == {**body, "model": MODEL}
    request = responses_route.calls.last.request
    assert (request.headers["authorization"], request.headers["accept"]) == (
        f"Bearer {PROVIDER_KEY}",
        "application/json",
    )
    assert "x-secret" not in request.headers
    assert not chat_route.called
    [row] = await usage_rows()
    assert (row.agent_id, row.upstream_url, row.stream, row.status_code, row.outcome) == (
        AGENT_ID,
        RESPONSES_URL,
        False,
        200,
        "ok",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (4, 6, 10)


@db
@routes_db
async def test_a_missing_model_is_added(agent, responses_route):
    responses_route.mock(return_value=httpx.Response(200, json=ANSWER))

    await call(RESPONSES, {"input": "hi"})

    assert sent(responses_route) == {"input": "hi", "model": MODEL}


@db
@routes_db
async def test_an_event_stream_is_relayed_as_it_arrives(agent, responses_route):
    completed = {"type": "response.completed", "response": {"id": "resp_1", "usage": RESPONSE_USAGE}}
    frames = response_events(
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_text.delta", "delta": "hi"},
        completed,
    )
    stream = ProviderStream(frames, hold_at=1)
    responses_route.mock(return_value=event_stream(stream))

    communicator, start = await open_call(RESPONSES, responses_body(stream=True))
    first, more = await body_chunk(communicator)

    assert (first, more, stream.sent) == (frames[0], True, 1)
    stream.release.set()
    rest = []
    while more:
        piece, more = await body_chunk(communicator)
        rest.append(piece)
    await communicator.wait(5)
    headers = header_map(start)
    assert (headers["content-type"], headers["cache-control"], headers["x-accel-buffering"]) == (
        "text/event-stream",
        "no-cache",
        "no",
    )
    assert b"".join(rest) == b"".join(frames[1:])
    assert responses_route.calls.last.request.headers["accept"] == "text/event-stream"
    [row] = await usage_rows()
    assert (row.stream, row.outcome, row.prompt_tokens, row.completion_tokens, row.total_tokens) == (
        True,
        "ok",
        4,
        6,
        10,
    )


@db
@routes_db
async def test_a_failure_mid_stream_ends_with_a_responses_error_event(agent, responses_route):
    frames = response_events({"type": "response.created", "response": {"id": "resp_1"}}, {"type": "x"})
    stream = ProviderStream(frames, hold_at=0, fail_at=1)
    stream.release.set()
    responses_route.mock(return_value=event_stream(stream))

    response = await call(RESPONSES, responses_body(stream=True))

    first, error = response.body.split(b"\n\n")[:2]
    assert first + b"\n\n" == frames[0]
    event_line, data_line = error.split(b"\n")
    assert event_line == b"event: error"
    data = json.loads(data_line.removeprefix(b"data: "))
    assert (data["type"], data["code"], data["param"]) == ("error", "upstream_error", None)
    assert data["message"].startswith("read upstream response: ")
    [row] = await usage_rows()
    assert row.outcome == LlmOutcome.TRANSPORT_ERROR


@db
@routes_db
@pytest.mark.parametrize("status", [400, 429, 500])
async def test_other_provider_errors_are_relayed_without_fallback(agent, responses_route, chat_route, status):
    error = {"error": {"message": "nope"}}
    responses_route.mock(return_value=httpx.Response(status, json=error))

    first = await call(RESPONSES, responses_body())
    second = await call(RESPONSES, responses_body())

    for response in (first, second):
        assert (response.status, json.loads(response.body)) == (status, error)
    assert (responses_route.call_count, chat_route.called) == (2, False)
    rows = await usage_rows()
    assert [(row.outcome, row.status_code) for row in rows] == [("upstream_error", status)] * 2


@db
@routes_db
@pytest.mark.parametrize("status", [404, 405])
async def test_without_a_responses_api_the_answer_comes_from_chat_completions(
    agent, responses_route, chat_route, status
):
    responses_route.mock(return_value=httpx.Response(status, json={"error": {"message": "no such route"}}))
    chat_route.mock(return_value=httpx.Response(200, json=CHAT_ANSWER))
    body = responses_body(
        instructions="be brief", max_output_tokens=32, temperature=0.5, reasoning={"effort": "x"}
    )

    first = await call(RESPONSES, body)
    second = await call(PATHS[1], body)

    for response in (first, second):
        assert (response.status, response.headers["content-type"]) == (200, "application/json")
        assert json.loads(response.body) == response_from_chat(CHAT_ANSWER, model_id=MODEL)
        assert int(response.headers[OVERHEAD_HEADER.lower()]) >= 0
    # The second call went straight to chat completions.
    assert (responses_route.call_count, chat_route.call_count) == (1, 2)
    assert sent(chat_route) == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "max_tokens": 32,
        "reasoning_effort": "medium",
    }
    assert chat_route.calls.last.request.headers["accept"] == "application/json"
    rows = await usage_rows()
    assert [(row.upstream_url, row.status_code, row.outcome) for row in rows] == [(CHAT_URL, 200, "ok")] * 2
    assert [(row.prompt_tokens, row.completion_tokens, row.total_tokens) for row in rows] == [(3, 5, 8)] * 2
    assert all(0 <= row.ttfb_ms <= row.latency_ms for row in rows)


@db
@routes_db
async def test_the_memory_is_per_provider_base_url_and_model(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    chat_route.mock(return_value=httpx.Response(200, json=CHAT_ANSWER))
    others = {
        ("remote", BASE_URL, "gpt-4o"),
        ("remote", "https://other.test/v1", MODEL),
        ("other", BASE_URL, MODEL),
    }
    responses.providers_without_responses_api.update(others)

    await call(RESPONSES, responses_body())
    await call(RESPONSES, responses_body())

    assert (responses_route.call_count, chat_route.call_count) == (1, 2)
    assert responses.providers_without_responses_api == {*others, ("remote", BASE_URL, MODEL)}


@db
@routes_db
async def test_the_fallback_asks_for_stream_usage_as_the_chat_route_does(
    agent, settings, responses_route, chat_route
):
    settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE = True
    responses_route.mock(return_value=NOT_FOUND)
    chat_route.mock(return_value=event_stream(ProviderStream(sse(chunk("a"), "[DONE]"), hold_at=9)))

    await call(RESPONSES, responses_body(stream=True))

    assert sent(chat_route)["stream_options"] == {"include_usage": True}
    assert sent(chat_route)["stream"] is True
    assert chat_route.calls.last.request.headers["accept"] == "text/event-stream"


@db
@routes_db
@pytest.mark.parametrize("status", [400, 429, 503])
async def test_a_chat_error_in_the_fallback_is_relayed(agent, responses_route, chat_route, status):
    responses_route.mock(return_value=NOT_FOUND)
    chat_route.mock(return_value=httpx.Response(status, text="busy", headers={"content-type": "text/plain"}))

    response = await call(RESPONSES, responses_body(stream=True))

    assert (response.status, response.body, response.headers["content-type"]) == (
        status,
        b"busy",
        "text/plain",
    )
    [row] = await usage_rows()
    assert (row.upstream_url, row.status_code, row.outcome) == (CHAT_URL, status, "upstream_error")


@db
@routes_db
@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (b"<html>oops", "convert chat fallback response: Expecting value: line 1 column 1 (char 0)"),
        (b"[1, 2]", "convert chat fallback response: chat response is not a JSON object"),
    ],
)
async def test_an_unconvertible_chat_answer_is_502(agent, responses_route, chat_route, answer, text):
    responses_route.mock(return_value=NOT_FOUND)
    chat_route.mock(return_value=httpx.Response(200, content=answer))

    response = await call(RESPONSES, responses_body())

    assert (response.status, response.text) == (502, text + "\n")
    [row] = await usage_rows()
    assert (row.status_code, row.error) == (200, text)


@db
@routes_db
async def test_an_unreadable_chat_answer_is_502(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    stream = ProviderStream([b'{"id":'], hold_at=1, fail_at=0)
    chat_route.mock(
        return_value=httpx.Response(200, headers={"content-type": "application/json"}, stream=stream)
    )

    response = await call(RESPONSES, responses_body())

    assert (response.status, response.text) == (
        502,
        "read chat fallback response: connection reset by peer\n",
    )
    [row] = await usage_rows()
    assert row.outcome == LlmOutcome.TRANSPORT_ERROR


@db
@routes_db
async def test_a_chat_answer_over_ten_mib_is_502(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    chat_route.mock(return_value=httpx.Response(200, content=b" " * (MAX_BODY_BYTES + 1)))

    response = await call(RESPONSES, responses_body())

    assert response.status == 502
    assert response.text.startswith("read chat fallback response: ")


@db
@routes_db
async def test_a_streamed_fallback_sends_each_event_as_its_chunk_arrives(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    chunks = sse(
        chunk("Hel", id="chatcmpl-5", model=MODEL),
        chunk("lo"),
        chunk(finish="stop"),
        {"choices": [], "usage": CHAT_USAGE},
        "[DONE]",
    )
    stream = ProviderStream(chunks, hold_at=1)
    chat_route.mock(return_value=event_stream(stream))

    communicator, start = await open_call(RESPONSES, responses_body(stream=True))
    first = b""
    while b"response.output_text.delta" not in first:
        piece, more = await body_chunk(communicator)
        first += piece
        assert more

    # The first delta reached the client while the provider still held the rest.
    assert stream.sent == 1
    assert [event["type"] for event in events_of(first)][-1] == "response.output_text.delta"
    stream.release.set()
    rest = b""
    while more:
        piece, more = await body_chunk(communicator)
        rest += piece
    await communicator.wait(5)
    headers = header_map(start)
    assert (headers["content-type"], headers["cache-control"]) == ("text/event-stream", "no-cache")
    assert start["status"] == 200
    events = events_of(first + rest)
    assert [event["type"] for event in events] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1]["response"]["id"] == "resp_chatcmpl-5"
    assert events[-1]["response"]["output_text"] == "Hello"
    assert "usage" not in events[-1]["response"]
    [row] = await usage_rows()
    assert (row.upstream_url, row.stream, row.outcome) == (CHAT_URL, True, "ok")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (3, 5, 8)


@db
@routes_db
async def test_a_client_leaving_a_converted_stream_closes_the_providers(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    stream = ProviderStream(sse(chunk("a"), chunk("b"), "[DONE]"), hold_at=1)
    chat_route.mock(return_value=event_stream(stream))
    communicator, _ = await open_call(RESPONSES, responses_body(stream=True))
    await body_chunk(communicator)

    await client_leaves(communicator, stream)

    assert stream.sent == 1
    [row] = await usage_rows()
    assert (row.outcome, row.error) == (LlmOutcome.CLIENT_DISCONNECTED, "client disconnected")


@db
@routes_db
async def test_a_client_leaving_right_after_response_completed_got_the_whole_answer(agent, responses_route):
    completed = {"type": "response.completed", "response": {"id": "resp_1", "usage": RESPONSE_USAGE}}
    # The provider's last bytes after the completion are held back: the client leaves before they pass.
    stream = ProviderStream([*response_events(completed), b"\n"], hold_at=1)
    responses_route.mock(return_value=event_stream(stream))
    communicator, _ = await open_call(RESPONSES, responses_body(stream=True))
    await body_chunk(communicator)

    await client_leaves(communicator, stream)

    [row] = await usage_rows()
    assert (row.outcome, row.error, row.total_tokens) == (LlmOutcome.OK, "", 10)


@db
@routes_db
async def test_an_error_chunk_in_a_streamed_fallback_is_an_error_event(agent, responses_route, chat_route):
    responses_route.mock(return_value=NOT_FOUND)
    stream = ProviderStream(sse(chunk("a"), {"error": {"message": "overloaded", "code": "busy"}}), hold_at=9)
    chat_route.mock(return_value=event_stream(stream))

    response = await call(RESPONSES, responses_body(stream=True))

    events = events_of(response.body)
    assert events[-1] == {"type": "error", "code": "busy", "message": "overloaded", "param": None}
    assert stream.closed.is_set()
    [row] = await usage_rows()
    assert (row.outcome, row.error) == ("upstream_error", "overloaded")


@db
@routes_db
async def test_tool_use_history_is_400_after_the_404_and_then_without_any_call(
    agent, responses_route, chat_route
):
    responses_route.mock(return_value=NOT_FOUND)
    body = responses_body(input=[{"type": "function_call_output", "call_id": "c1", "output": "42"}])

    after_404 = await call(RESPONSES, body)
    remembered = await call(RESPONSES, body, headers={"accept": "application/json"})
    no_input = await call(RESPONSES, responses_body(input=""))

    assert (after_404.status, after_404.text) == (400, TOOL_HISTORY_TEXT + "\n")
    assert (remembered.status, json.loads(remembered.body)) == (
        400,
        {"error": {"status": 400, "message": TOOL_HISTORY_TEXT}},
    )
    assert (no_input.status, no_input.text) == (400, INPUT_REQUIRED_TEXT + "\n")
    assert (responses_route.call_count, chat_route.called) == (1, False)
    # Only the call that reached the provider has a row.
    [row] = await usage_rows()
    assert (row.upstream_url, row.status_code, row.outcome, row.error) == (
        RESPONSES_URL,
        404,
        "upstream_error",
        TOOL_HISTORY_TEXT,
    )


@db
@routes_db
async def test_the_checks_before_the_provider_are_the_chat_routes(agent, responses_route):
    oversized = await call(RESPONSES, raw=b"x" * (MAX_BODY_BYTES + 1))
    not_object = await call(RESPONSES, raw=b"[1]")
    unknown = await call("/api/v1/agents/pt-ghost/llm/responses", raw=b"[1]")
    unauthorized = await call(RESPONSES, responses_body(), token=None)

    assert (oversized.status, oversized.text) == (413, "request body too large\n")
    assert (not_object.status, not_object.text) == (400, "decode request: body must be a JSON object\n")
    assert (unknown.status, unknown.text) == (404, 'agent "pt-ghost" not found\n')
    assert (unauthorized.status, unauthorized.text) == (401, "unauthorized\n")
    assert not responses_route.called


@db
@routes_db
@pytest.mark.parametrize("alias", ["pt-alice", "agent-alice", "alice"])
async def test_every_alias_reaches_the_same_agent(agent, responses_route, alias):
    responses_route.mock(return_value=httpx.Response(200, json=ANSWER))

    response = await call(f"/api/v1/agents/{alias}/llm/v1/responses", responses_body())

    assert response.status == 200
    [row] = await usage_rows()
    assert row.agent_id == AGENT_ID


@db
@routes_db
@pytest.mark.parametrize("action", ["responses", "v1/responses"])
async def test_the_bot_routes_stay_chat_only(agent, responses_route, action):
    response = await call(f"/api/bots/{AGENT_ID}/llm/{action}", responses_body())

    assert response.status == 404
    assert not responses_route.called
