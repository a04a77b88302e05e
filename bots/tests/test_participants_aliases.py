"""Alias ids in mention tags (participants.md §1.4) on every message-create path, and the stored frames."""

from __future__ import annotations

import pytest

from bots.services import bot_message_send
from im.aliases import alias_user_ids, rewrite_alias_tags
from im.events import MESSAGE_CREATED
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Event, EventRecipient, Message, UserRole
from im.tests.factories import make_agent, make_room, make_user, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

GROUP = "room-aliases"


@pytest.fixture(autouse=True)
def team() -> None:
    if not ChatUser.objects.filter(pk=MANAGER_ID).exists():
        make_user(MANAGER_ID, name="manager", role=UserRole.MANAGER)
    make_agent(MANAGER_ID, name="manager", role="manager")
    for agent_id, name in (("u-Alice", "alice"), ("u-worker_01", "worker_01"), ("u-bob", "bob")):
        make_user(agent_id, name=name)
        make_agent(agent_id, name=name)
    make_room(room_id=GROUP, members=[ADMIN_ID, MANAGER_ID, "u-Alice", "u-worker_01", "u-bob"])


@pytest.mark.parametrize(
    ("alias", "user_id"),
    [
        ("pt-alice", "u-Alice"),
        ("pt-Alice", "u-Alice"),
        ("agent-Alice", "u-Alice"),
        ("alice", "u-Alice"),
        ("worker_01", "u-worker_01"),
        ("user-worker_01", "u-worker_01"),
        ("pt-manager", MANAGER_ID),
        ("agent-manager", MANAGER_ID),
        ("manager", MANAGER_ID),
        ("pt-admin", ADMIN_ID),
        ("admin", ADMIN_ID),
    ],
)
def test_aliases_resolve_to_user_ids(alias: str, user_id: str) -> None:
    assert alias_user_ids([alias]) == {alias: user_id}


def test_existing_ids_and_unknown_aliases_are_not_rewritten() -> None:
    assert alias_user_ids(["u-Alice", "pt-zz", "x" * 200]) == {}


def test_rewrite_keeps_unknown_tags_and_text_verbatim() -> None:
    content = '<at user_id="pt-alice">alice</at> and <at user_id="pt-zz">zz</at> <at user_id="u-bob">b</at>'
    assert rewrite_alias_tags(content) == (
        '<at user_id="u-Alice">alice</at> and <at user_id="pt-zz">zz</at> <at user_id="u-bob">b</at>'
    )


def test_rest_send_stores_the_user_id_and_counts_the_mention(client) -> None:
    response = post_json(
        client,
        "/api/v1/messages",
        {"room_id": GROUP, "sender_id": ADMIN_ID, "content": '<at user_id="pt-alice">alice</at> hi'},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["content"] == '<at user_id="u-Alice">alice</at> hi'
    assert body["mentions"] == ["u-Alice"]
    stored = Message.objects.get(message_id=body["id"])
    assert stored.content == '<at user_id="u-Alice">alice</at> hi'
    event = Event.objects.get(type=MESSAGE_CREATED, message_id=body["id"])
    assert event.payload["message"]["content"] == stored.content
    assert list(EventRecipient.objects.filter(event=event).values_list("recipient_id", "mentioned")) == [
        ("u-Alice", True)
    ]


def test_rest_send_keeps_an_unknown_alias_and_mentions_nobody(client) -> None:
    response = post_json(
        client,
        "/api/v1/messages",
        {"room_id": GROUP, "sender_id": ADMIN_ID, "content": '<at user_id="pt-zz">zz</at> hi'},
    )

    assert response.status_code == 201
    assert response.json()["content"] == '<at user_id="pt-zz">zz</at> hi'
    assert response.json()["mentions"] == []


def test_rest_mention_id_is_not_added_twice_when_an_alias_names_the_user(client) -> None:
    response = post_json(
        client,
        "/api/v1/messages",
        {
            "room_id": GROUP,
            "sender_id": ADMIN_ID,
            "content": '<at user_id="pt-alice">alice</at> hi',
            "mention_id": "u-Alice",
        },
    )

    assert response.json()["content"] == '<at user_id="u-Alice">alice</at> hi'


def test_bot_send_rewrites_aliases() -> None:
    message = bot_message_send(bot_id="u-bob", room_id=GROUP, text='<at user_id="agent-manager">m</at> done')

    assert message.content == '<at user_id="u-manager">m</at> done'
    assert message.mentions == [MANAGER_ID]


def test_message_created_stores_the_participant_frame_without_recipient_keys() -> None:
    message = bot_message_send(bot_id="u-bob", room_id=GROUP, text="@alice look")
    event = Event.objects.get(type=MESSAGE_CREATED, message_id=message.message_id)

    frame = event.participant_payload
    assert list(frame) == [
        "message_id",
        "room_id",
        "channel",
        "chat_id",
        "chat_type",
        "sender",
        "sender_id",
        "text",
        "timestamp",
        "context",
    ]
    assert frame["channel"] == "csgclaw"
    assert frame["chat_id"] == frame["room_id"] == GROUP
    assert frame["chat_type"] == "group"
    assert frame["sender"] == {"id": "u-bob", "username": "bob", "display_name": "bob"}
    assert frame["text"] == "@alice look"
    assert frame["timestamp"] == event.bot_payload["timestamp"]
    assert frame["context"] == {
        "channel": "csgclaw",
        "chat_id": GROUP,
        "chat_type": "group",
        "sender_id": "u-bob",
        "message_id": message.message_id,
        "raw": {"room_id": GROUP, "thread_root_id": ""},
    }
