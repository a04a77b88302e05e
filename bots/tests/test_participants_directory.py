"""Participant list and detail (participants.md §4.1), and the routes not implemented here (§4.2, §4.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.models import Agent, AgentRole, Bot, BotChannel
from core.times import format_time
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser
from im.tests.factories import error_text, make_agent, make_user, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

BASE = "/api/v1/channels"
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
WIRE_KEYS = [
    "id",
    "channel",
    "type",
    "name",
    "channel_user_ref",
    "channel_user_kind",
    "agent_id",
    "agent_name",
    "user_id",
    "user_name",
    "lifecycle_status",
    "mentionable",
    "created_at",
    "updated_at",
]


def url(channel: str = "csgclaw", participant_id: str | None = None, suffix: str = "") -> str:
    base = f"{BASE}/{channel}/participants"
    return base if participant_id is None else f"{base}/{participant_id}{suffix}"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def placed(agent: Agent, minutes: int) -> Agent:
    """The agent with a fixed created_at (updated_at is set by every save, so it is read back)."""
    Agent.objects.filter(pk=agent.pk).update(created_at=at(minutes))
    return Agent.objects.get(pk=agent.pk)


@pytest.fixture
def team() -> dict[str, Agent]:
    """The admin (t0), the manager (t1), Alice with her IM user (t2), worker_01 whose IM user is gone (t3)."""
    ChatUser.objects.filter(pk=ADMIN_ID).update(created_at=at(0))
    manager = placed(make_agent(MANAGER_ID, name="manager", role=AgentRole.MANAGER), 1)
    make_user("u-Alice", name="Alice IM")
    alice = placed(make_agent("u-Alice", name="Alice"), 2)
    worker = placed(make_agent("u-worker_01", name="worker_01"), 3)
    return {"manager": manager, "alice": alice, "worker": worker}


def admin_json() -> dict:
    return {
        "id": "pt-admin",
        "channel": "csgclaw",
        "type": "human",
        "name": "admin",
        "channel_user_ref": ADMIN_ID,
        "channel_user_kind": "local_user_id",
        "user_id": ADMIN_ID,
        "user_name": "admin",
        "lifecycle_status": "active",
        "mentionable": True,
        "created_at": format_time(at(0)),
        "updated_at": format_time(at(0)),
    }


def agent_json(agent: Agent, participant_id: str, user_name: str | None) -> dict:
    wire = {
        "id": participant_id,
        "channel": "csgclaw",
        "type": "agent",
        "name": agent.name,
        "channel_user_ref": agent.id,
        "channel_user_kind": "local_user_id",
        "agent_id": agent.id,
        "agent_name": agent.name,
        "user_id": agent.id,
        "user_name": user_name,
        "lifecycle_status": "active",
        "mentionable": True,
        "created_at": format_time(agent.created_at),
        "updated_at": format_time(agent.updated_at),
    }
    return {key: value for key, value in wire.items() if value is not None}


# --- csgclaw ------------------------------------------------------------------------------------------------


def test_the_csgclaw_list_is_the_admin_and_every_agent(client, team):
    response = client.get(url())

    assert response.status_code == 200
    assert response.json() == [
        admin_json(),
        agent_json(team["manager"], "pt-manager", "manager"),
        agent_json(team["alice"], "pt-Alice", "Alice IM"),
        agent_json(team["worker"], "pt-worker_01", None),
    ]


def test_keys_come_in_wire_order_and_upstream_only_keys_are_never_sent(client, team):
    for participant in client.get(url()).json():
        assert list(participant) == [key for key in WIRE_KEYS if key in participant]
        assert {"avatar", "channel_app_ref", "channel_app_config", "presence", "metadata"}.isdisjoint(
            participant
        )


def test_the_list_is_ordered_by_created_at_then_id(client, team):
    ChatUser.objects.filter(pk=ADMIN_ID).update(created_at=at(9))
    placed(make_agent("u-b", name="b"), 5)
    placed(make_agent("u-a", name="a"), 5)

    ids = [participant["id"] for participant in client.get(url()).json()]

    assert ids == ["pt-manager", "pt-Alice", "pt-worker_01", "pt-a", "pt-b", "pt-admin"]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ({"type": "human"}, ["pt-admin"]),
        ({"type": " agent "}, ["pt-manager", "pt-Alice", "pt-worker_01"]),
        ({"type": "notification"}, []),
        ({"type": "Human"}, []),
        ({"type": ""}, ["pt-admin", "pt-manager", "pt-Alice", "pt-worker_01"]),
        ({"agent_id": "agent-Alice"}, ["pt-Alice"]),
        ({"agent_id": "pt-alice", "type": "agent"}, ["pt-Alice"]),
        ({"agent_id": "manager"}, ["pt-manager"]),
        ({"agent_id": "pt-ghost"}, []),
        ({"agent_id": "admin"}, []),
        ({"agent_id": "pt-alice", "type": "human"}, []),
    ],
)
def test_filters(client, team, query, ids):
    assert [participant["id"] for participant in client.get(url(), query).json()] == ids


def test_an_empty_list_is_an_empty_array(client):
    assert client.get(url(), {"type": "agent"}).json() == []


@pytest.mark.parametrize(
    ("path_id", "participant"),
    [("pt-alice", "alice"), ("agent-Alice", "alice"), ("u-Alice", "alice"), ("pt-manager", "manager")],
)
def test_detail_resolves_the_id(client, team, path_id, participant):
    response = client.get(url(participant_id=path_id))

    assert response.status_code == 200
    assert response.json()["agent_id"] == team[participant].id


@pytest.mark.parametrize("path_id", ["admin", "u-admin", "pt-admin", "user-admin"])
def test_detail_of_the_admin(client, team, path_id):
    assert client.get(url(participant_id=path_id)).json() == admin_json()


def test_detail_of_an_agent_whose_user_is_gone_has_no_user_name(client, team):
    assert client.get(url(participant_id="worker_01")).json() == agent_json(
        team["worker"], "pt-worker_01", None
    )


@pytest.mark.parametrize("path_id", ["pt-ghost", "%20", "x" * 129])
def test_detail_of_an_unresolved_id_is_404(client, team, path_id):
    response = client.get(url(participant_id=path_id))

    assert (response.status_code, error_text(response)) == (404, "404 page not found")


# --- feishu -------------------------------------------------------------------------------------------------


@pytest.fixture
def feishu_bots(team) -> None:
    Bot.objects.create(
        channel=BotChannel.FEISHU,
        bot_id="u-Alice",
        name="alice-bot",
        role="worker",
        agent_id="u-Alice",
        user_id="ou_alice",
        created_at=at(7),
    )
    Bot.objects.create(
        channel=BotChannel.FEISHU,
        bot_id="lonely",
        name="lonely",
        role="worker",
        user_id="ou_lonely",
        created_at=at(6),
    )
    Bot.objects.create(
        channel=BotChannel.CSGCLAW, bot_id="u-Alice", name="Alice", role="worker", agent_id="u-Alice"
    )


def feishu_json(bot_id: str) -> dict:
    bot = Bot.objects.get(channel=BotChannel.FEISHU, bot_id=bot_id)
    wire = {
        "id": bot.bot_id,
        "channel": "feishu",
        "type": "agent",
        "name": bot.name,
        "channel_user_ref": bot.user_id,
        "channel_user_kind": "open_id",
        "agent_id": bot.agent_id,
        "agent_name": "Alice" if bot.agent_id else "",
        "user_id": bot.user_id,
        "lifecycle_status": "active",
        "mentionable": True,
        "created_at": format_time(bot.created_at),
        "updated_at": format_time(bot.created_at),
    }
    return {key: value for key, value in wire.items() if value != ""}


@pytest.mark.usefixtures("feishu_bots")
def test_the_feishu_list_is_the_stored_feishu_bots(client):
    assert client.get(url("feishu")).json() == [feishu_json("lonely"), feishu_json("u-Alice")]


@pytest.mark.usefixtures("feishu_bots")
def test_the_feishu_list_filters_by_agent_and_type(client):
    assert [bot["id"] for bot in client.get(url("feishu"), {"agent_id": "pt-alice"}).json()] == ["u-Alice"]
    assert client.get(url("feishu"), {"type": "human"}).json() == []


@pytest.mark.usefixtures("feishu_bots")
def test_feishu_detail_takes_the_exact_bot_id(client):
    found = client.get(url("feishu", "lonely"))
    alias = client.get(url("feishu", "pt-alice"))

    assert (found.status_code, found.json()) == (200, feishu_json("lonely"))
    assert (alias.status_code, error_text(alias)) == (404, "404 page not found")


# --- checks and the routes not implemented (§4.2, §4.3) -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        url("slack"),
        url("slack", "pt-admin"),
        url("slack", "pt-admin", "/notifications"),
        url("%20"),
        url(participant_id="pt-admin", suffix="/notifications/x"),
        url() + "/",
        f"{url(participant_id='pt-admin')}/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_channels_and_paths_are_404_before_the_method(client, path, method):
    response = getattr(client, method)(path)

    assert (response.status_code, error_text(response)) == (404, "404 page not found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", url()),
        ("put", url()),
        ("delete", url("feishu")),
        ("head", url()),
        ("options", url()),
        ("patch", url(participant_id="pt-admin")),
        ("delete", url(participant_id="pt-dev")),
        ("post", url("feishu", "pt-ghost")),
        ("get", url(participant_id="pt-admin", suffix="/notifications")),
        ("delete", url("feishu", "x", "/notifications")),
    ],
)
def test_other_methods_are_405(client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    if method != "head":  # a HEAD response never carries a body
        assert error_text(response) == "method not allowed"


def test_creating_a_participant_creates_nothing(client, team):
    response = post_json(client, url(), {"type": "agent", "name": "carol"})

    assert response.status_code == 405
    assert not Agent.objects.filter(name="carol").exists()


@pytest.mark.parametrize("channel", ["csgclaw", "feishu"])
@pytest.mark.parametrize("path_id", ["pt-admin", "pt-ghost"])
def test_notifications_have_no_participant(client, team, channel, path_id):
    response = post_json(client, url(channel, path_id, "/notifications"), {"text": "hi"})

    assert (response.status_code, error_text(response)) == (404, "notification participant not found")


def test_notifications_to_an_empty_id_are_404_page_not_found(client):
    response = client.post(url(participant_id="%20", suffix="/notifications"))

    assert (response.status_code, error_text(response)) == (404, "404 page not found")
