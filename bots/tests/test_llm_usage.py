"""LLM usage accounting (bots/llm/usage.py): the taps, the call record, the rows (llm-bridge.md §8)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from bots import selectors
from bots.llm.usage import (
    EventStreamUsageTap,
    JsonUsageTap,
    LlmCall,
    Usage,
    llm_call_record,
    llm_usage_writes_settled,
)
from bots.llm.views import MAX_BODY_BYTES, OVERHEAD_HEADER
from bots.models import LlmOutcome, LlmUsage
from bots.tests.llm_bridge import (
    AGENT_ID,
    ANSWER,
    CHAT,
    CHAT_PATHS,
    MODEL,
    UPSTREAM_URL,
    call,
    chat_body,
    delta,
    sse,
    usage_rows,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("default_config", "settle_usage_writes"),
]

# A base URL with credentials, as config.toml may hold one (security S9).
SECRET_BASE = "https://alice:pa@ss-9f2e@llm.example.test/v1"


# --- rows of relayed calls -----------------------------------------------------------------------------


async def test_a_plain_call_records_one_row(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    response = await call(CHAT, chat_body())

    [row] = await usage_rows()
    assert (row.agent_id, row.model, row.provider, row.upstream_url) == (
        AGENT_ID,
        MODEL,
        "remote",
        UPSTREAM_URL,
    )
    assert (row.stream, row.status_code, row.outcome, row.error) == (False, 200, LlmOutcome.OK, "")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (3, 5, 8)
    assert row.overhead_ms == int(response.headers[OVERHEAD_HEADER.lower()])
    assert row.ttfb_ms is not None and row.latency_ms >= row.ttfb_ms


@pytest.mark.parametrize(
    ("usage", "counts"),
    [
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, (0, 0, 0)),
        ({"prompt_tokens": 7}, (7, None, None)),
        (None, (None, None, None)),
        ({"prompt_tokens": "7", "completion_tokens": -1, "total_tokens": True}, (None, None, None)),
    ],
)
async def test_usage_of_a_plain_answer(agent, provider, usage, counts):
    answer = {**ANSWER, "usage": usage}
    provider.mock(return_value=httpx.Response(200, json=answer))

    await call(CHAT, chat_body())

    [row] = await usage_rows()
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == counts


async def test_a_stream_without_usage_records_none(agent, provider):
    body = b"".join(sse(delta("a"), delta("b"), "[DONE]"))
    provider.mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )

    response = await call(CHAT, chat_body(stream=True))

    assert response.body == body
    [row] = await usage_rows()
    assert (row.outcome, row.prompt_tokens, row.total_tokens) == (LlmOutcome.OK, None, None)


async def test_each_call_records_its_own_row(agent, provider):
    provider.mock(return_value=httpx.Response(200, json=ANSWER))

    for path in CHAT_PATHS:
        await call(path, chat_body())

    rows = await usage_rows()
    assert len(rows) == 2
    totals = await sync_to_async(selectors.llm_usage_totals)(AGENT_ID)
    assert (totals.calls, totals.prompt_tokens, totals.total_tokens) == (2, 6, 16)


async def test_a_call_is_recorded_once_even_if_asked_twice():
    started = asyncio.get_running_loop().time()
    call = LlmCall(
        agent_id=AGENT_ID,
        model=MODEL,
        provider="remote",
        upstream_url=UPSTREAM_URL,
        stream=False,
        started=started,
        created_at=timezone.now(),
    )
    call.failed(LlmOutcome.TIMEOUT, "upstream request timed out")

    llm_call_record(call)
    call.failed(LlmOutcome.CLIENT_DISCONNECTED, "client disconnected")
    llm_call_record(call)

    [row] = await usage_rows()
    assert row.outcome == LlmOutcome.TIMEOUT


# --- usage taps ----------------------------------------------------------------------------------------


def feed_all(tap: Any, chunks: Sequence[bytes]) -> Usage | None:
    for chunk in chunks:
        tap.feed(chunk)
    return tap.usage()


def test_event_stream_tap_keeps_the_last_usage_object():
    body = b"".join(
        sse(
            delta("a", {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
            delta("b", None),
            delta("", {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
            "[DONE]",
        )
    )
    # Fed in 7-byte pieces, so lines are split across chunks, and with CRLF line ends.
    pieces = [body.replace(b"\n", b"\r\n")[i : i + 7] for i in range(0, len(body) * 2, 7)]

    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), pieces) == Usage(0, 0, 0)


def test_event_stream_tap_reads_a_final_line_without_newline_and_ignores_a_cut_one():
    complete = b'data: {"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}'

    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), [complete]) == Usage(2, 3, 5)
    assert feed_all(EventStreamUsageTap(MAX_BODY_BYTES), [complete + b"\n\n", complete[:-9]]) == Usage(
        2, 3, 5
    )


def test_event_stream_tap_drops_an_overlong_line():
    tap = EventStreamUsageTap(limit=16)

    assert feed_all(tap, [b'data: {"usage":', b'{"prompt_tokens":1}}']) is None


def test_json_tap_reads_usage_split_across_chunks_and_gives_up_past_its_limit():
    body = json.dumps(ANSWER).encode()

    assert feed_all(JsonUsageTap(MAX_BODY_BYTES), [body[:10], body[10:30], body[30:]]) == Usage(3, 5, 8)
    assert feed_all(JsonUsageTap(limit=len(body) - 1), [body]) is None
    assert feed_all(JsonUsageTap(MAX_BODY_BYTES), [b"[1, 2]"]) is None


def test_event_stream_tap_knows_when_the_answer_was_delivered():
    tap = EventStreamUsageTap(MAX_BODY_BYTES)

    tap.feed(b'data: {"choices":[]}\r\n\r\ndata: [DO')
    assert not tap.delivered
    tap.feed(b"NE]\r\n")
    assert tap.delivered


# --- security S9: upstream URLs and errors are stored with `user:pass@` masked --------------------------


async def test_usage_rows_store_the_upstream_url_and_error_masked() -> None:
    call = LlmCall(
        agent_id="u-alice",
        model="gpt-5.4",
        provider="remote",
        upstream_url=f"{SECRET_BASE}/chat/completions",
        stream=False,
        started=0.0,
        created_at=timezone.now(),
    )
    call.failed(LlmOutcome.TRANSPORT_ERROR, f"send upstream request: bad URL {SECRET_BASE}/chat/completions")

    llm_call_record(call)
    await llm_usage_writes_settled()

    row = await LlmUsage.objects.aget()
    assert row.upstream_url == "https://***@llm.example.test/v1/chat/completions"
    assert row.error == "send upstream request: bad URL https://***@llm.example.test/v1/chat/completions"
