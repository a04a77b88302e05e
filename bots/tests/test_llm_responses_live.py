"""The Responses API end to end (participants.md §5.5–§5.6): the `openai` client's `responses.create`
against a live Daphne, with a provider that has the Responses API and with one that answers it 404."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import openai
import pytest

from bots.tests.fake_openai import RESPONSE_USAGE, USAGE, FakeOpenAI
from bots.tests.test_agent_llm_live import CREATE_MANAGER, MODEL, config_toml, manager_client, usage_rows
from csgclaw_site.testing.live import LiveServer, LiveState

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

STREAM_CHUNKS = 4
# The provider writes its stream's frames this far apart: its last frame is written
# (STREAM_CHUNKS + 1) intervals after its first.
CHUNK_INTERVAL = 0.4
STREAMED_TEXT = "".join(f"part {number} " for number in range(STREAM_CHUNKS))


@dataclass
class Setup:
    provider: FakeOpenAI
    state: LiveState
    client: openai.OpenAI


@pytest.fixture
def setup(
    live_state_factory: Callable[..., LiveState], daphne_factory: Callable[..., LiveServer]
) -> Iterator[Setup]:
    """A manager whose model is the fake provider's, and the SDK pointed at its agent-scoped LLM routes."""
    with FakeOpenAI(models=[MODEL]) as provider:
        # The chat stream of the fallback then carries usage, as the chat route's would.
        state = live_state_factory(extra_env={"CSGCLAW_LLM_INCLUDE_STREAM_USAGE": "true"})
        (state.home / "config.toml").write_text(config_toml(provider.base_url))
        state.manage("shell", "-c", CREATE_MANAGER)
        server = daphne_factory(state=state)
        client = manager_client(server)
        yield Setup(provider, state, client)


def stream_with_arrival(client: openai.OpenAI) -> tuple[list[object], float]:
    """The events of a streamed `responses.create`, and when the first of them reached the client."""
    events, first_arrival = [], 0.0
    for event in client.responses.create(model="openai/whatever", input="count", stream=True):
        if not events:
            first_arrival = time.monotonic()
        events.append(event)
    return events, first_arrival


def assert_streamed_long_before_the_provider_finished(provider: FakeOpenAI, first_arrival: float) -> None:
    chunk_times = provider.streams[-1].chunk_times
    assert len(chunk_times) >= STREAM_CHUNKS + 1
    # The whole stream takes about STREAM_CHUNKS + 1 intervals; the first event came after the first frame.
    assert first_arrival < chunk_times[-1] - 2 * CHUNK_INTERVAL


def test_the_responses_api_is_relayed_from_the_provider(setup: Setup):
    provider = setup.provider

    answer = setup.client.responses.create(model="openai/whatever", input="ping", instructions="be brief")
    provider.stream_chunks, provider.chunk_interval = STREAM_CHUNKS, CHUNK_INTERVAL
    events, first_arrival = stream_with_arrival(setup.client)

    assert (answer.output_text, answer.usage.total_tokens) == ("pong", RESPONSE_USAGE["total_tokens"])
    assert [event.type for event in events] == [
        "response.created",
        *["response.output_text.delta"] * STREAM_CHUNKS,
        "response.completed",
    ]
    assert "".join(event.delta for event in events[1:-1]) == STREAMED_TEXT
    assert events[-1].response.output_text == STREAMED_TEXT
    assert_streamed_long_before_the_provider_finished(provider, first_arrival)
    plain, streamed = provider.requests
    assert (plain.path, streamed.path) == ("/v1/responses", "/v1/responses")
    assert plain.body == {"model": MODEL, "input": "ping", "instructions": "be brief"}
    assert (streamed.body["stream"], streamed.headers["accept"]) == (True, "text/event-stream")
    rows = usage_rows(setup.state, 2)
    assert [(row["upstream_url"], row["stream"], row["outcome"]) for row in rows] == [
        (f"{provider.base_url}/responses", 0, "ok"),
        (f"{provider.base_url}/responses", 1, "ok"),
    ]
    tokens = (RESPONSE_USAGE["input_tokens"], RESPONSE_USAGE["output_tokens"], RESPONSE_USAGE["total_tokens"])
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == tokens


def test_without_a_responses_api_the_answer_comes_from_chat_completions(setup: Setup):
    provider = setup.provider
    provider.responses_api = False

    answer = setup.client.responses.create(model="openai/whatever", input="ping", max_output_tokens=16)
    provider.stream_chunks, provider.chunk_interval = STREAM_CHUNKS, CHUNK_INTERVAL
    events, first_arrival = stream_with_arrival(setup.client)

    assert (answer.id, answer.output_text) == ("resp_chatcmpl-fake", "pong")
    assert answer.usage.total_tokens == USAGE["total_tokens"]
    assert [event.type for event in events] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * STREAM_CHUNKS,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1].response.output_text == STREAMED_TEXT
    assert events[-1].response.id == "resp_chatcmpl-fake"
    assert_streamed_long_before_the_provider_finished(provider, first_arrival)
    # Only the first call asked /responses: the second went straight to chat completions.
    assert [request.path for request in provider.requests] == [
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/chat/completions",
    ]
    plain, streamed = provider.requests[1:]
    assert plain.body == {"model": MODEL, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
    assert streamed.body["stream_options"] == {"include_usage": True}
    rows = usage_rows(setup.state, 2)
    assert [(row["upstream_url"], row["stream"], row["outcome"]) for row in rows] == [
        (f"{provider.base_url}/chat/completions", 0, "ok"),
        (f"{provider.base_url}/chat/completions", 1, "ok"),
    ]
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == tuple(USAGE.values())
