"""Schemathesis over the routes of the live server's own /api/schema/ (issue 12, item 5).

For each operation, generated requests (valid ones, and invalid ones where the operation has a body or a
query to break) must never get a 5xx, every answer must match the schema (status code, content type,
body), and a 4xx must leave the state as it was: the bootstrap, the agent list and the bot list read the
same before and after. Random ids name nothing and random titles fail their checks, so a valid case
mostly gets the ids of existing users, rooms, agents and bots and plain words instead: the success paths
are fuzzed too. Every REST route is run, and of the hand-written ones all but those that may answer
with an event stream (the streams, chat completions), so their hand-written schema meets the server too.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.live, pytest.mark.timeout(150)]

# Per operation and generation mode: about 30 operations, so a few hundred requests in all.
MAX_EXAMPLES = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STATE_PATHS = ("/api/v1/im/bootstrap", "/api/v1/agents", "/api/v1/bots")
# After a write, background work (a new worker's box and intro message) may still be landing.
SETTLE_SECONDS = 3.0
SETTLE_POLL = 0.05
TOKEN = "schemathesis-server-token"
# The server token opens the routes that want it (token rotation, Feishu send); a model default lets a
# worker be created. Nothing listens on loopback's discard port: no case reaches a provider.
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}
CONFIG_TOML = f"""
[server]
access_token = "{TOKEN}"

[models]
default = "fake.fake-model"

[models.providers.fake]
base_url = "http://127.0.0.1:9/v1"
api_key = "sk-fake"
models = ["fake-model"]
"""
# Which kind of existing id a parameter or body field names.
ID_KINDS = {
    "room_id": "rooms",
    "user_id": "users",
    "creator_id": "users",
    "inviter_id": "users",
    "sender_id": "users",
    "mention_id": "users",
    "participant_id": "users",
    "agent_id": "agents",
    "bot_id": "bots",
}
ID_LIST_KINDS = {"user_ids": "users", "member_ids": "users", "participant_ids": "users"}
# Values that pass the services' checks of the other fields that a success needs.
WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10)
GOOD_VALUES = {
    "title": WORD,
    "name": WORD,
    "content": WORD,
    "role": st.sampled_from(["worker", "manager"]),
    "channel": st.sampled_from(["csgclaw", "feishu"]),
}


class LiveState:
    """What a client can see of the server's state, re-read after every answer that may have changed it."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.known = self.settled()

    def read(self) -> list[Any]:
        return [self.session.get(self.base_url + path, timeout=10).json() for path in STATE_PATHS]

    def settled(self) -> list[Any]:
        """The state once no agent is still being created and two reads in a row agree."""
        deadline = time.monotonic() + SETTLE_SECONDS
        previous = self.read()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_POLL)
            current = self.read()
            creating = any(agent["status"] == "creating" for agent in current[1])
            if current == previous and not creating:
                return current
            previous = current
        return previous

    def ids(self) -> dict[str, list[str]]:
        bootstrap, agents, bots = self.known
        return {
            "users": [user["id"] for user in bootstrap["users"]],
            "rooms": [room["id"] for room in bootstrap["rooms"]],
            "agents": [agent["id"] for agent in agents],
            "bots": [bot["id"] for bot in bots],
        }


def _body_fields(raw_schema: dict[str, Any], operation: Any) -> set[str]:
    """The fields of the operation's JSON body, as its schema lists them."""
    body = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = body.get("schema", {})
    if "$ref" in schema:
        schema = raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema.get("properties", {}))


def _known_value(name: str, ids: dict[str, list[str]], data: st.DataObject) -> Any:
    """A value for the field that names something that exists or passes its checks, or None.

    The draws are the same whatever exists: Hypothesis replays a failing case and wants the same draws.
    """
    if name in GOOD_VALUES:
        return data.draw(GOOD_VALUES[name])
    picks = data.draw(st.lists(st.integers(0, 1_000), min_size=1, max_size=3))
    existing = ids.get(ID_KINDS.get(name) or ID_LIST_KINDS.get(name, ""), [])
    if not existing:
        return None
    chosen = [existing[pick % len(existing)] for pick in picks]
    return chosen if name in ID_LIST_KINDS else chosen[0]


def _use_known_values(
    case: Any, data: st.DataObject, ids: dict[str, list[str]], body_fields: set[str]
) -> None:
    """Give most fields of a valid case known values, also fields it left out; the case stays valid."""
    containers = [(case.path_parameters, set()), (case.query, set())]
    if isinstance(case.body, dict):
        containers.append((case.body, body_fields))
    for container, fields in containers:
        for name in sorted(set(container or ()) | fields):
            if name not in GOOD_VALUES and name not in ID_KINDS and name not in ID_LIST_KINDS:
                continue
            # Mostly: a success needs several fields right at once.
            use = data.draw(st.integers(0, 3)) > 0
            known = _known_value(name, ids, data)
            if use and known is not None:
                container[name] = known


def _negatable(operation: Any) -> bool:
    """True when the operation has a body or a query or header parameter that a case could break.

    String path ids cannot be made invalid (every string is one), and Hypothesis would search in vain.
    """
    definition = operation.definition.raw
    return "requestBody" in definition or any(
        parameter.get("in") != "path" for parameter in definition.get("parameters", [])
    )


def _may_stream(ctx: Any) -> bool:
    """An answer that may be an event stream: the streams never end, and chat completions relay a provider
    that this test does not run."""
    ok = ctx.operation.definition.raw["responses"].get("200", {})
    return "text/event-stream" in ok.get("content", {})


def _fuzz(operation: Any, mode: GenerationMode, check: Callable[[Any, st.DataObject], None]) -> str | None:
    """None when every generated case passes `check`, else what failed."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        check(case, data)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_every_rest_route_answers_as_its_schema_says(live_state_factory, daphne_factory):
    state_dir = live_state_factory()
    (state_dir.home / "config.toml").write_text(CONFIG_TOML)
    server = daphne_factory(state=state_dir)
    session = requests.Session()
    session.trust_env = False
    raw = session.get(server.base_url + "/api/schema/", params={"format": "json"}, timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw).exclude(func=_may_stream)
    # An agent (with its IM user and bot) and a room of two, for the cases to name.
    for path, body in (
        ("/api/v1/agents", {"name": "alice"}),
        ("/api/v1/rooms", {"title": "seed", "creator_id": "u-admin", "member_ids": ["u-alice"]}),
    ):
        assert session.post(server.base_url + path, json=body, timeout=10).status_code == 201
    state = LiveState(session, server.base_url)

    # Each failure as it happened: Hypothesis replays a failing case to report it, and against a state
    # that has moved on the replay may pass or fail otherwise.
    found: list[str] = []

    def check(case: Any, data: st.DataObject) -> None:
        try:
            if case.meta.generation.mode is GenerationMode.POSITIVE:
                _use_known_values(case, data, state.ids(), _body_fields(raw, case.operation))
            response = case.call(base_url=server.base_url, session=session, headers=AUTHORIZATION, timeout=10)
            case.validate_response(response, checks=CHECKS)
            if 400 <= response.status_code < 500:
                assert state.read() == state.known, f"the {response.status_code} answer changed the state"
            elif case.method.upper() != "GET":
                # A read writes nothing; were it to, the next 4xx would find the state changed.
                state.known = state.settled()
        # Schemathesis raises its check failures as a BaseExceptionGroup.
        except (Exception, BaseExceptionGroup) as exc:
            found.append(f"{case.operation.label} ({case.meta.generation.mode.value}): {exc}")
            raise

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    runs = [(operation, GenerationMode.POSITIVE) for operation in operations] + [
        (operation, GenerationMode.NEGATIVE) for operation in operations if _negatable(operation)
    ]
    # Deletes last, so that the other operations still find the seeded agent and room.
    runs.sort(key=lambda run: run[0].method.upper() == "DELETE")
    failures = [failure for operation, mode in runs if (failure := _fuzz(operation, mode, check)) is not None]
    # Hypothesis's own reports repeat what `found` holds; alone, they are errors of the run itself.
    report = found or failures
    assert report == [], "\n\n".join(report)
