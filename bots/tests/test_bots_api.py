"""The Bots REST v1 routes end to end on the fake sandbox (http-api.md §2.5, §7.1–7.3, §9.2, §9.5).

Feishu Open API calls go through the real client to a respx mock of `CSGCLAW_FEISHU_BASE_URL`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx

from agents.lifecycle import status as agent_status
from agents.models import Agent, AgentRole, AgentStatus, Bot, BotChannel
from agents.records import manager_ensure
from bots.feishu import client as feishu
from core.config import ConfigError, clear_config_cache, get_config, resolve_model
from core.times import format_time
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Message, Room
from im.selectors import direct_room_between
from im.tests.factories import (
    Check,
    error_text,
    event_mark,
    event_types_after,
    events_after,
    failing_body,
    json_text,
    make_room,
    make_user,
    row_counts,
)
from sandbox.providers.fake import DELAY_ENV, FAIL_ENV

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

BOTS = "/api/v1/bots"
FEISHU_BASE_URL = "https://feishu.test"
FEISHU_TOKEN_URL = f"{FEISHU_BASE_URL}/open-apis/auth/v3/tenant_access_token/internal"
FEISHU_BOT_INFO_URL = f"{FEISHU_BASE_URL}/open-apis/bot/v3/info"
ZERO_TIME = "0001-01-01T00:00:00Z"
BOT_KEYS = ["id", "name", "description", "role", "channel", "agent_id", "user_id", "available", "created_at"]
MODELS_TOML = """
[server]
access_token = "shared-token"

[models]
default = "remote.gpt-5.4"

[models.providers.remote]
base_url = "https://llm.example.test/v1"
api_key = "sk-test"
models = ["gpt-5.4"]
"""


# --- state, config and Feishu ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def csgclaw_home(tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state directory and config.toml; a fresh Feishu client so no cache leaks between tests."""
    home = tmp_path / "home"
    home.mkdir()
    settings.CSGCLAW_HOME = home
    settings.CSGCLAW_CONFIG = home / "config.toml"
    settings.CSGCLAW_FEISHU_BASE_URL = FEISHU_BASE_URL
    monkeypatch.delenv(FAIL_ENV, raising=False)
    monkeypatch.delenv(DELAY_ENV, raising=False)
    monkeypatch.setattr(agent_status, "_refreshed_at", {})
    monkeypatch.setattr(feishu, "client", feishu.FeishuClient())
    write_config(home)
    yield home
    clear_config_cache()


def write_config(
    home: Path, *, feishu_apps: dict[str, tuple[str, str]] | None = None, models: str = ""
) -> None:
    """config.toml with one model provider and `[channels.feishu.<id>]` tables (id → app_id, app_secret)."""
    text = models or MODELS_TOML
    for bot_id, (app_id, app_secret) in (feishu_apps or {}).items():
        text += f'\n[channels.feishu."{bot_id}"]\napp_id = "{app_id}"\napp_secret = "{app_secret}"\n'
    (home / "config.toml").write_text(text)
    clear_config_cache()


@pytest.fixture
def feishu_apps(csgclaw_home: Path) -> Callable[..., None]:
    """`feishu_apps(**{"u-dev": "cli_dev"})`: configure apps (secret `secret-<app id>`) for bot ids."""

    def configure(apps: dict[str, str]) -> None:
        write_config(
            csgclaw_home, feishu_apps={bot_id: (app, f"secret-{app}") for bot_id, app in apps.items()}
        )

    return configure


class FakeFeishu:
    """The two Open API calls bot resolution makes; bot info answers per app (by its tenant token)."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.bots: dict[str, dict[str, str]] = {}
        self.failing: dict[str, tuple[int, str]] = {}
        self.token_route = router.post(FEISHU_TOKEN_URL).mock(side_effect=self._token)
        self.info_route = router.get(FEISHU_BOT_INFO_URL).mock(side_effect=self._bot_info)

    def bot(self, app_id: str, *, open_id: str, app_name: str = "") -> None:
        self.bots[app_id] = {"open_id": open_id, "app_name": app_name}

    def fail(self, app_id: str, code: int = 99991663, msg: str = "app not found") -> None:
        self.failing[app_id] = (code, msg)

    def _token(self, request: httpx.Request) -> httpx.Response:
        app_id = json.loads(request.content)["app_id"]
        return httpx.Response(200, json={"code": 0, "tenant_access_token": f"t-{app_id}", "expire": 7200})

    def _bot_info(self, request: httpx.Request) -> httpx.Response:
        app_id = request.headers["Authorization"].removeprefix("Bearer t-")
        if app_id in self.failing:
            code, msg = self.failing[app_id]
            return httpx.Response(200, json={"code": code, "msg": msg})
        return httpx.Response(200, json={"code": 0, "bot": self.bots[app_id]})


@pytest.fixture
def fake_feishu() -> Iterator[FakeFeishu]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeFeishu(router)


# --- requests --------------------------------------------------------------------------------------------


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """Requests whose on-commit work (intro message, inline box provisioning) runs as in the server."""

    class Api:
        def post(self, body, path: str = BOTS, **headers: str):
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(path, data=json_text(body), content_type="text/plain", headers=headers)

        def get(self, path: str = BOTS, **params: str):
            return client.get(path, params)

        def delete(self, path: str):
            with django_capture_on_commit_callbacks(execute=True):
                return client.delete(path)

        def bots(self, **params: str) -> list[dict]:
            response = client.get(BOTS, params)
            assert response.status_code == 200, response.content
            return response.json()

    return Api()


def created(response) -> dict:
    assert response.status_code == 201, response.content
    return response.json()


def bot_row(bot_id: str, channel: str = BotChannel.CSGCLAW) -> Bot:
    return Bot.objects.get(channel=channel, bot_id=bot_id)


def make_agent(agent_id: str, *, name: str, status: str = AgentStatus.RUNNING, role: str = AgentRole.WORKER):
    return Agent.objects.create(id=agent_id, name=name, slug=name.lower(), role=role, status=status)


def make_bot(
    bot_id: str, *, channel: str = BotChannel.CSGCLAW, role: str = AgentRole.WORKER, **fields
) -> Bot:
    fields.setdefault("name", bot_id.removeprefix("u-"))
    fields.setdefault("agent_id", bot_id)
    fields.setdefault("user_id", bot_id)
    return Bot.objects.create(channel=channel, bot_id=bot_id, role=role, **fields)


# --- create: worker ----------------------------------------------------------------------------------------


def test_worker_bot_on_csgclaw_runs_the_whole_worker_chain(api):
    mark = event_mark()

    body = created(api.post({"name": "alice", "description": "test lead", "role": "worker", "model_id": "x"}))

    binding = bot_row("u-alice")
    assert list(body) == BOT_KEYS
    assert body == {
        "id": "u-alice",
        "name": "alice",
        "description": "test lead",
        "role": "worker",
        "channel": "csgclaw",
        "agent_id": "u-alice",
        "user_id": "u-alice",
        # Answered as written: the box is still being made.
        "available": False,
        "created_at": format_time(binding.created_at),
    }
    agent = Agent.objects.get(pk="u-alice")
    assert (agent.role, agent.status, agent.description) == ("worker", "running", "test lead")
    assert ChatUser.objects.get(pk="u-alice").handle == "alice"
    room = direct_room_between(ADMIN_ID, "u-alice")
    assert room is not None
    intro = Message.objects.filter(room=room, sender_id=ADMIN_ID).get()
    assert intro.content == "@alice Write this down in your memory: your name is alice. Your job: test lead."
    types = event_types_after(mark)
    assert types[:2] == ["user.created", "room.created"]
    assert sorted(types[2:]) == ["agent.updated", "message.created"]
    assert list(Bot.objects.values_list("channel", "bot_id")) == [("csgclaw", "u-alice")]
    assert (binding.name, binding.description, binding.role) == ("alice", "test lead", "worker")


def test_a_new_worker_is_available_once_its_box_runs(api):
    created(api.post({"name": "alice", "role": "worker"}))

    [listed] = api.bots()

    assert listed["available"] is True


def test_role_and_channel_are_case_insensitive_and_the_id_is_trimmed(api):
    body = created(api.post({"name": " Bob ", "id": " u-builder ", "role": " WORKER ", "channel": "CsgClaw"}))

    assert (body["id"], body["name"], body["role"], body["channel"]) == (
        "u-builder",
        "Bob",
        "worker",
        "csgclaw",
    )
    assert Agent.objects.get(pk="u-builder").name == "Bob"


def test_worker_bot_on_feishu_without_an_app_uses_the_agent_id_and_no_csgclaw_binding(api):
    mark = event_mark()

    body = created(api.post({"name": "alice", "role": "worker", "channel": "feishu"}))

    assert (body["channel"], body["user_id"], body["agent_id"]) == ("feishu", "u-alice", "u-alice")
    assert list(Bot.objects.values_list("channel", "bot_id")) == [("feishu", "u-alice")]
    # The worker chain itself is unchanged: IM user, direct room, intro, box.
    assert event_types_after(mark)[:2] == ["user.created", "room.created"]
    assert "message.created" in event_types_after(mark)
    assert Agent.objects.get(pk="u-alice").status == AgentStatus.RUNNING


def test_worker_bot_on_feishu_with_an_app_uses_the_app_bot_open_id(api, feishu_apps, fake_feishu):
    feishu_apps({"u-alice": "cli_alice"})
    fake_feishu.bot("cli_alice", open_id="ou_alice", app_name="Alice Bot")

    body = created(api.post({"name": "alice", "role": "worker", "channel": "feishu"}))

    assert body["user_id"] == "ou_alice"
    assert bot_row("u-alice", BotChannel.FEISHU).user_id == "ou_alice"
    assert json.loads(fake_feishu.token_route.calls.last.request.content) == {
        "app_id": "cli_alice",
        "app_secret": "secret-cli_alice",
    }


def test_an_existing_worker_is_reused_without_new_events_or_intro(api):
    created(api.post({"name": "alice", "description": "test lead"}, path="/api/v1/agents"))
    agent_before = Agent.objects.get(pk="u-alice")
    counts, mark = row_counts(), event_mark()

    body = created(
        api.post(
            {
                "name": "someone else",
                "id": "u-alice",
                "role": "worker",
                "channel": "feishu",
                "description": "x",
            }
        )
    )

    # The binding takes the agent's name and the request's description; the agent is untouched.
    assert (body["name"], body["description"], body["available"]) == ("alice", "x", True)
    assert event_types_after(mark) == []
    assert row_counts() == counts
    assert Agent.objects.get(pk="u-alice").updated_at == agent_before.updated_at
    assert sorted(Bot.objects.values_list("channel", flat=True)) == ["csgclaw", "feishu"]


def test_reposting_is_an_idempotent_upsert(api):
    first = created(api.post({"name": "alice", "description": "one", "role": "worker"}))
    mark, counts = event_mark(), row_counts()

    second = created(api.post({"name": "alice", "description": "two", "role": "worker"}))

    assert second == {**first, "description": "two", "available": True}
    assert event_types_after(mark) == []
    assert row_counts() == counts
    assert Bot.objects.count() == 1


def test_reposting_restores_a_deleted_im_user_with_events_only_for_what_is_new(api, client):
    created(api.post({"name": "alice", "role": "worker"}))
    assert client.delete("/api/v1/users/u-alice").status_code == 204
    mark = event_mark()

    created(api.post({"name": "alice", "role": "worker"}))

    user = ChatUser.objects.get(pk="u-alice")
    assert (user.name, user.handle, user.role) == ("alice", "alice", "worker")
    room = direct_room_between(ADMIN_ID, "u-alice")
    assert room is not None
    # No intro for a reused agent: the new room holds only its greeting from the agent.
    assert list(Message.objects.filter(room=room).values_list("sender_id", flat=True)) == ["u-alice"]
    assert event_types_after(mark) == ["user.created", "room.created"]
    assert events_after(mark)[0].payload["user"]["id"] == "u-alice"


def test_feishu_failure_writes_nothing(api, feishu_apps, fake_feishu):
    feishu_apps({"u-alice": "cli_alice"})
    fake_feishu.fail("cli_alice")
    counts, mark = row_counts(), event_mark()

    response = api.post({"name": "alice", "role": "worker", "channel": "feishu"})

    assert response.status_code == 400
    assert (
        error_text(response) == "failed to ensure feishu user: feishu bot info: code 99991663: app not found"
    )
    assert row_counts() == counts
    assert event_mark() == mark
    assert not Bot.objects.exists()


def test_feishu_app_without_secret_is_a_feishu_user_failure(api, csgclaw_home):
    write_config(csgclaw_home, feishu_apps={"u-alice": ("cli_alice", "")})

    response = api.post({"name": "alice", "role": "worker", "channel": "feishu"})

    assert response.status_code == 400
    assert error_text(response) == 'failed to ensure feishu user: feishu app_secret is required for "u-alice"'


def test_im_user_failure_is_wrapped_and_rolls_back(api):
    # The agent exists but its handle now belongs to someone else, so its IM user cannot be re-created.
    make_agent("u-alice", name="alice")
    make_user("u-other", name="alice", handle="alice")
    counts, mark = row_counts(), event_mark()

    response = api.post({"name": "alice", "role": "worker"})

    assert response.status_code == 400
    assert error_text(response) == 'failed to ensure im user: handle "alice" already exists'
    assert row_counts() == counts
    assert event_mark() == mark
    assert not Bot.objects.exists()


# --- create: checks in order ----------------------------------------------------------------------------

FAILING_FEISHU_IDS = ("u-carol", "u-manager", "u-a/b", "u-admin", "u-Bob", "u-admin2", "u-" + "x" * 65)
CREATE_BASE = {"name": "carol", "role": "worker", "description": "tester"}
CREATE_CHECKS = [
    Check("name required", {"name": "   "}, 400, "name is required"),
    Check("role", {"role": "boss"}, 400, 'role must be one of "manager" or "worker"'),
    Check("channel", {"channel": "slack"}, 400, 'channel must be one of "csgclaw" or "feishu"'),
    Check("name length", {"name": "x" * 65}, 400, "name must be at most 64 characters"),
    Check(
        "description length", {"description": "d" * 2001}, 400, "description must be at most 2000 characters"
    ),
    Check(
        "not a worker", {"id": "u-manager"}, 400, 'agent id "u-manager" already exists with role "manager"'
    ),
    Check("reserved name", {"name": "Manager"}, 400, 'name "Manager" is reserved'),
    Check("invalid id", {"id": "u-a/b"}, 400, 'agent id "u-a/b" is invalid'),
    Check("invalid name", {"name": "a b", "id": ""}, 400, 'invalid agent name "a b"'),
    Check("id exists", {"id": "u-admin"}, 400, 'agent id "u-admin" already exists'),
    Check("name exists", {"name": "Bob"}, 400, 'agent name "Bob" already exists'),
    Check("handle exists", {"name": "admin", "id": "u-admin2"}, 400, 'handle "admin" already exists'),
    Check(
        "feishu user",
        {"channel": "feishu"},
        400,
        "failed to ensure feishu user: feishu bot info: code 1: down",
    ),
]


@pytest.fixture
def create_check_state(api, feishu_apps, fake_feishu) -> None:
    """An existing manager agent and worker `bob`, and a Feishu app that fails for every id the checks use."""
    manager_ensure(config=get_config())
    make_agent("u-bob", name="bob")
    feishu_apps({bot_id: f"cli_{index}" for index, bot_id in enumerate(FAILING_FEISHU_IDS)})
    for index in range(len(FAILING_FEISHU_IDS)):
        fake_feishu.fail(f"cli_{index}", code=1, msg="down")


@pytest.mark.usefixtures("create_check_state")
@pytest.mark.parametrize("with_later_defects", [False, True], ids=["alone", "with-later-defects"])
@pytest.mark.parametrize("index", range(len(CREATE_CHECKS)), ids=[check.name for check in CREATE_CHECKS])
def test_create_checks_answer_in_order_and_write_nothing(api, index, with_later_defects):
    body = failing_body(CREATE_BASE, CREATE_CHECKS, index, with_later_defects=with_later_defects)
    counts, mark = row_counts(), event_mark()

    response = api.post(body)

    check = CREATE_CHECKS[index]
    assert (response.status_code, error_text(response)) == (check.status, check.text), body
    assert row_counts() == counts
    assert event_mark() == mark
    assert not Bot.objects.exclude(bot_id=MANAGER_ID).exists()


@pytest.mark.usefixtures("create_check_state")
def test_the_create_check_base_body_passes(api):
    assert created(api.post(CREATE_BASE))["id"] == "u-carol"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("", "decode request: EOF"),
        ("[]", "decode request: body must be a JSON object"),
        ('{"name": 5, "role": 1}', 'decode request: field "name" must be a string'),
        (
            '{"name": "a", "role": "worker", "model_id": 7}',
            'decode request: field "model_id" must be a string',
        ),
        ('{"name": "a", "role": "worker", "id": ["x"]}', 'decode request: field "id" must be a string'),
        ("{", "decode request: "),
    ],
)
def test_undecodable_bodies(api, raw, text):
    response = api.post(raw)

    assert response.status_code == 400
    assert error_text(response).startswith(text)


def test_null_fields_are_absent(api):
    response = api.post({"name": "alice", "role": "worker", "channel": None, "id": None, "description": None})

    assert created(response)["channel"] == "csgclaw"


def test_a_missing_role_is_the_role_error(api):
    response = api.post({"name": "alice"})

    assert (response.status_code, error_text(response)) == (400, 'role must be one of "manager" or "worker"')


def test_a_body_over_one_mebibyte_is_413(api):
    response = api.post({"name": "alice", "role": "worker", "description": "x" * (1024 * 1024)})

    assert (response.status_code, error_text(response)) == (413, "request body too large")


def test_an_unresolvable_default_model_is_the_resolver_message_unchanged(api, csgclaw_home):
    broken = MODELS_TOML.replace('default = "remote.gpt-5.4"', 'default = "remote.missing"')
    write_config(csgclaw_home, models=broken)
    with pytest.raises(ConfigError) as resolver:
        resolve_model(get_config(), "")

    response = api.post({"name": "alice", "role": "worker"})

    assert (response.status_code, error_text(response)) == (400, str(resolver.value))
    assert not Agent.objects.exists()


# --- create: manager --------------------------------------------------------------------------------------


def test_manager_bot_creates_the_missing_manager_and_queues_its_box(api):
    mark = event_mark()

    body = created(api.post({"name": "Boss", "role": "manager", "description": "runs things"}))

    assert body == {
        "id": "u-manager",
        "name": "Boss",
        "description": "runs things",
        "role": "manager",
        "channel": "csgclaw",
        "agent_id": "u-manager",
        "user_id": "u-manager",
        "available": False,
        "created_at": format_time(bot_row(MANAGER_ID).created_at),
    }
    agent = Agent.objects.get(pk=MANAGER_ID)
    assert (agent.name, agent.role, agent.status) == ("manager", "manager", "running")
    assert bot_row(MANAGER_ID).name == "Boss"
    # The seeded IM user and room are reused: only the agent's status changes are announced.
    assert set(event_types_after(mark)) == {"agent.updated"}
    statuses = [event.payload["agent"]["status"] for event in events_after(mark)]
    assert statuses[0] == "creating" and statuses[-1] == "running"


def test_manager_bot_reuses_an_existing_manager(api):
    manager = manager_ensure(config=get_config(), status=AgentStatus.STOPPED)
    mark = event_mark()

    body = created(api.post({"name": "Boss", "id": "u-manager", "role": "MANAGER"}))

    assert (body["name"], body["available"]) == ("Boss", False)
    assert Agent.objects.get(pk=MANAGER_ID).status == AgentStatus.STOPPED
    assert Agent.objects.get(pk=MANAGER_ID).updated_at == manager.updated_at
    assert event_types_after(mark) == []


def test_manager_bot_on_feishu_uses_the_manager_app(api, feishu_apps, fake_feishu):
    manager_ensure(config=get_config(), status=AgentStatus.RUNNING)
    feishu_apps({MANAGER_ID: "cli_manager"})
    fake_feishu.bot("cli_manager", open_id="ou_manager")

    body = created(api.post({"name": "Boss", "role": "manager", "channel": "feishu"}))

    assert (body["channel"], body["user_id"], body["available"]) == ("feishu", "ou_manager", True)
    # The csgclaw manager binding of onboarding keeps its own name.
    assert bot_row(MANAGER_ID).name == "manager"


def test_manager_bot_restores_a_deleted_manager_user_with_its_fixed_look(api, client):
    manager_ensure(config=get_config(), status=AgentStatus.RUNNING)
    assert client.delete(f"/api/v1/users/{MANAGER_ID}").status_code == 204
    mark = event_mark()

    created(api.post({"name": "Boss", "role": "manager"}))

    user = ChatUser.objects.get(pk=MANAGER_ID)
    assert (user.name, user.handle, user.role, user.avatar, user.accent_hex) == (
        "manager",
        "manager",
        "manager",
        "MG",
        "#0f766e",
    )
    assert direct_room_between(ADMIN_ID, MANAGER_ID) is not None
    assert event_types_after(mark) == ["user.created", "room.created"]


@pytest.mark.parametrize("bot_id", ["u-boss", "U-MANAGER", "manager"])
def test_manager_bot_id_must_be_u_manager(api, bot_id):
    response = api.post({"name": "Boss", "role": "manager", "id": bot_id})

    assert (response.status_code, error_text(response)) == (400, 'manager bot id must be "u-manager"')
    assert not Agent.objects.exists()


# --- list --------------------------------------------------------------------------------------------------


def test_list_is_empty_array_without_bots(api):
    response = api.get()

    assert (response.status_code, response.content) == (200, b"[]")


def test_list_orders_by_created_at_then_id_then_channel_and_filters(api):
    at = datetime(2026, 4, 24, 10, 0, tzinfo=UTC)
    later = datetime(2026, 4, 24, 11, 0, tzinfo=UTC)
    make_bot("u-zed", created_at=at)
    make_bot("u-amy", channel=BotChannel.FEISHU, created_at=at)
    make_bot("u-amy", created_at=at)
    make_bot("u-manager", role=AgentRole.MANAGER, name="boss", created_at=later)
    make_bot("u-early", channel=BotChannel.FEISHU, created_at=datetime(2026, 4, 24, 9, 0, tzinfo=UTC))

    def keys(**params: str) -> list[tuple[str, str]]:
        return [(bot["channel"], bot["id"]) for bot in api.bots(**params)]

    assert keys() == [
        ("feishu", "u-early"),
        ("csgclaw", "u-amy"),
        ("feishu", "u-amy"),
        ("csgclaw", "u-zed"),
        ("csgclaw", "u-manager"),
    ]
    assert keys(channel=" CSGCLAW ") == [("csgclaw", "u-amy"), ("csgclaw", "u-zed"), ("csgclaw", "u-manager")]
    assert keys(role="Manager") == [("csgclaw", "u-manager")]
    assert keys(channel="csgclaw", role="worker") == [("csgclaw", "u-amy"), ("csgclaw", "u-zed")]
    assert keys(channel="", role="  ") == keys()


def test_list_shape_and_availability_follow_the_current_agent_rows(api):
    make_agent("u-run", name="run", status=AgentStatus.RUNNING)
    make_agent("u-stop", name="stop", status=AgentStatus.STOPPED)
    at = datetime(2026, 4, 24, 10, 0, 1, 500000, tzinfo=UTC)
    make_bot("u-run", created_at=at, description="runner")
    make_bot("u-stop", created_at=at)
    make_bot("u-gone", created_at=at)

    listed = {bot["id"]: bot for bot in api.bots()}

    assert listed["u-run"] == {
        "id": "u-run",
        "name": "run",
        "description": "runner",
        "role": "worker",
        "channel": "csgclaw",
        "agent_id": "u-run",
        "user_id": "u-run",
        "available": True,
        "created_at": "2026-04-24T10:00:01.5Z",
    }
    assert "description" not in listed["u-stop"]
    assert listed["u-stop"]["available"] is False
    assert (listed["u-gone"]["agent_id"], listed["u-gone"]["available"]) == ("u-gone", False)


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"channel": "slack"}, 'channel must be one of "csgclaw" or "feishu"'),
        ({"channel": "slack", "role": "boss"}, 'channel must be one of "csgclaw" or "feishu"'),
        ({"role": "boss"}, 'role must be one of "manager" or "worker"'),
        ({"channel": "feishu", "role": "boss"}, 'role must be one of "manager" or "worker"'),
    ],
)
def test_list_rejects_unknown_filters(api, params, text):
    response = api.get(**params)

    assert (response.status_code, error_text(response)) == (400, text)


def test_feishu_list_appends_configured_apps_without_a_stored_bot(api, feishu_apps, fake_feishu):
    make_agent("u-dev", name="dev", status=AgentStatus.RUNNING)
    make_bot("u-ops", channel=BotChannel.FEISHU, created_at=datetime(2026, 4, 24, tzinfo=UTC))
    make_bot("u-csg", created_at=datetime(2026, 4, 24, tzinfo=UTC))
    feishu_apps(
        {
            "u-manager": "cli_m",
            "u-dev": "cli_dev",
            "qa": "cli_qa",
            # Stand for the stored feishu bot u-ops (by the id without `u-`): not listed again.
            "ops": "cli_ops",
            "u-ops": "cli_ops2",
            # A csgclaw bot does not count.
            "u-csg": "cli_csg",
        }
    )
    fake_feishu.bot("cli_m", open_id="ou_m", app_name="Manager App")
    fake_feishu.bot("cli_dev", open_id="ou_dev", app_name="  ")
    fake_feishu.bot("cli_qa", open_id="ou_qa", app_name="QA")
    fake_feishu.bot("cli_csg", open_id="ou_csg", app_name="CSG")

    listed = api.bots(channel="feishu")

    assert [bot["id"] for bot in listed] == ["u-ops", "qa", "u-csg", "u-dev", "u-manager"]
    assert listed[1:] == [
        {
            "id": "qa",
            "name": "QA",
            "role": "worker",
            "channel": "feishu",
            "agent_id": "",
            "user_id": "ou_qa",
            "available": False,
            "created_at": ZERO_TIME,
        },
        {
            "id": "u-csg",
            "name": "CSG",
            "role": "worker",
            "channel": "feishu",
            "agent_id": "",
            "user_id": "ou_csg",
            "available": False,
            "created_at": ZERO_TIME,
        },
        {
            "id": "u-dev",
            "name": "dev",
            "role": "worker",
            "channel": "feishu",
            "agent_id": "u-dev",
            "user_id": "ou_dev",
            "available": True,
            "created_at": ZERO_TIME,
        },
        {
            "id": "u-manager",
            "name": "Manager App",
            "role": "manager",
            "channel": "feishu",
            "agent_id": "",
            "user_id": "ou_m",
            "available": False,
            "created_at": ZERO_TIME,
        },
    ]
    assert [bot["id"] for bot in api.bots(channel="feishu", role="manager")] == ["u-manager"]
    assert [bot["id"] for bot in api.bots(channel="feishu", role="worker")] == [
        "u-ops",
        "qa",
        "u-csg",
        "u-dev",
    ]
    # Other channel filters never list configured apps.
    assert [bot["id"] for bot in api.bots()] == ["u-csg", "u-ops"]


def test_feishu_list_keeps_the_first_of_two_apps_for_one_bot(api, feishu_apps, fake_feishu):
    feishu_apps({"dev": "cli_a", "u-dev": "cli_b"})
    fake_feishu.bot("cli_a", open_id="ou_a")
    fake_feishu.bot("cli_b", open_id="ou_b")

    assert [(bot["id"], bot["user_id"]) for bot in api.bots(channel="feishu")] == [("dev", "ou_a")]


def test_feishu_list_fails_when_a_configured_app_cannot_be_resolved(api, feishu_apps, fake_feishu):
    feishu_apps({"u-dev": "cli_dev", "u-ok": "cli_ok"})
    fake_feishu.bot("cli_ok", open_id="ou_ok")
    fake_feishu.fail("cli_dev", code=10003, msg="invalid app")

    response = api.get(channel="feishu")

    assert response.status_code == 400
    assert error_text(response) == (
        'resolve configured feishu bot "u-dev" open_id: feishu bot info: code 10003: invalid app'
    )
    # An app filtered out by role is never resolved.
    assert [bot["id"] for bot in api.bots(channel="feishu", role="manager")] == []


# --- delete ------------------------------------------------------------------------------------------------


def test_deleting_a_worker_bot_deletes_its_im_user_and_its_agent(api, csgclaw_home):
    created(api.post({"name": "alice", "role": "worker"}))
    room = direct_room_between(ADMIN_ID, "u-alice")
    group = make_room(members=[ADMIN_ID, "u-alice"], title="pair")
    agent_dir = csgclaw_home / "agents" / "alice"
    assert agent_dir.exists()
    mark = event_mark()

    response = api.delete(f"{BOTS}/u-alice")

    assert (response.status_code, response.content) == (204, b"")
    assert not Bot.objects.exists()
    assert not ChatUser.objects.filter(pk="u-alice").exists()
    assert not Room.objects.filter(pk__in=[room.id, group.id]).exists()
    assert not Agent.objects.exists()
    assert not agent_dir.exists()
    assert event_types_after(mark) == ["user.deleted", "room.deleted", "room.deleted", "agent.updated"]
    assert events_after(mark)[-1].payload["agent"]["status"] == "deleted"


def test_the_agent_stays_while_another_binding_references_it(api):
    created(api.post({"name": "alice", "role": "worker"}))
    created(api.post({"name": "alice", "role": "worker", "channel": "feishu"}))

    assert api.delete(f"{BOTS}/u-alice").status_code == 204

    assert Agent.objects.filter(pk="u-alice").exists()
    assert not ChatUser.objects.filter(pk="u-alice").exists()
    mark = event_mark()

    assert api.delete(f"{BOTS}/u-alice?channel=FEISHU").status_code == 204

    # A feishu bot has no IM user to delete; the last binding takes the agent with it.
    assert not Agent.objects.exists()
    assert not Bot.objects.exists()
    assert event_types_after(mark) == ["agent.updated"]


def test_deleting_the_manager_bot_keeps_the_manager_agent(api):
    manager_ensure(config=get_config(), status=AgentStatus.RUNNING)

    assert api.delete(f"{BOTS}/{MANAGER_ID}").status_code == 204

    assert Agent.objects.filter(pk=MANAGER_ID).exists()
    assert not ChatUser.objects.filter(pk=MANAGER_ID).exists()
    assert not Bot.objects.exists()


def test_a_missing_im_user_is_ignored(api):
    make_bot("u-ghost", user_id="", agent_id="")

    assert api.delete(f"{BOTS}/u-ghost").status_code == 204
    assert not Bot.objects.exists()


def test_the_im_user_is_the_stored_user_id(api):
    make_user("u-carol")
    make_user("u-other")
    make_bot("u-carol", user_id="u-other", agent_id="")

    assert api.delete(f"{BOTS}/u-carol").status_code == 204

    assert list(ChatUser.objects.filter(pk__in=["u-carol", "u-other"]).values_list("pk", flat=True)) == [
        "u-carol"
    ]


def test_an_im_user_that_cannot_be_deleted_is_400_and_keeps_the_bot(api):
    make_bot("u-weird", user_id=ADMIN_ID, agent_id="")

    response = api.delete(f"{BOTS}/u-weird")

    assert (response.status_code, error_text(response)) == (
        400,
        'delete csgclaw user "u-admin": cannot delete current user',
    )
    assert Bot.objects.filter(bot_id="u-weird").exists()


def test_a_failing_box_removal_is_a_backing_agent_error(api, monkeypatch):
    created(api.post({"name": "alice", "role": "worker"}))
    monkeypatch.setenv(FAIL_ENV, "remove")

    response = api.delete(f"{BOTS}/u-alice")

    assert response.status_code == 400
    assert (
        error_text(response)
        == 'delete backing agent "u-alice": remove agent box: fake sandbox: remove failed'
    )
    # The bot and its IM user are gone already; the agent remains for a later DELETE /api/v1/agents.
    assert not Bot.objects.exists()
    assert not ChatUser.objects.filter(pk="u-alice").exists()
    assert Agent.objects.filter(pk="u-alice").exists()


def test_delete_of_an_unknown_bot_is_404(api):
    make_bot("u-alice", channel=BotChannel.FEISHU)

    response = api.delete(f"{BOTS}/u-alice")

    assert (response.status_code, error_text(response)) == (404, 'bot "u-alice" not found')
    long_id = "u-" + "x" * 200
    response = api.delete(f"{BOTS}/{long_id}")
    assert (response.status_code, error_text(response)) == (404, f'bot "{long_id}" not found')


def test_delete_checks_the_channel_before_the_bot(api):
    response = api.delete(f"{BOTS}/u-nobody?channel=slack")

    assert (response.status_code, error_text(response)) == (
        400,
        'channel must be one of "csgclaw" or "feishu"',
    )


def test_the_path_id_is_trimmed(api):
    make_bot("u-alice", agent_id="")

    assert api.delete(f"{BOTS}/%20u-alice%20").status_code == 204


# --- routing and methods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch", "delete", "head", "options"])
def test_the_collection_serves_only_get_and_post(client, method):
    response = getattr(client, method)(BOTS)

    assert response.status_code == 405
    if method != "head":
        assert error_text(response) == "method not allowed"


@pytest.mark.parametrize("method", ["get", "put", "patch", "post", "head", "options"])
def test_a_bot_path_serves_only_delete(client, method):
    make_bot("u-alice")

    response = getattr(client, method)(f"{BOTS}/u-alice")

    assert response.status_code == 405
    assert Bot.objects.exists()


@pytest.mark.parametrize("path", [f"{BOTS}/", f"{BOTS}/%20", f"{BOTS}/u-alice/events", f"{BOTS}/u-alice/"])
@pytest.mark.parametrize("method", ["get", "delete"])
def test_bad_bot_paths_are_404_before_the_method(client, path, method):
    response = getattr(client, method)(path)

    assert (response.status_code, error_text(response)) == (404, "404 page not found")


def test_errors_are_json_when_asked(client):
    response = client.get(BOTS, {"channel": "x"}, headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert response.json() == {
        "error": {"status": 400, "message": 'channel must be one of "csgclaw" or "feishu"'}
    }
