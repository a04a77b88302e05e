"""Message routes (http-api.md §6.9–6.10): listing, sending, check order, mention_id and client_msg_id."""

from __future__ import annotations

import re

import pytest

from im.identity import ADMIN_ID
from im.models import Event, Message, Room
from im.tests.factories import (
    ABSENT,
    Check,
    error_text,
    event_mark,
    event_types_after,
    failing_body,
    make_message,
    make_room,
    make_user,
    post_json,
    row_counts,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

MESSAGE_KEYS = ["id", "sender_id", "kind", "content", "created_at", "mentions"]
SEND_PATHS = ("/api/v1/im/messages", "/api/v1/messages")
GROUP = "room-group"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture(autouse=True)
def people():
    """dev and ops, and a group room of admin and dev."""
    make_user("u-dev")
    make_user("u-ops")
    make_room(room_id=GROUP, members=[ADMIN_ID, "u-dev"])


def _send(client, path: str = SEND_PATHS[1], **fields):
    return post_json(client, path, {"room_id": GROUP, "sender_id": ADMIN_ID, "content": "hi", **fields})


# --- list -------------------------------------------------------------------------------------------


def test_list_messages_oldest_first_with_exact_shapes(client):
    room = Room.objects.get(pk=GROUP)
    first = make_message(room, content="first", mentions=["u-dev"])
    second = make_message(room, sender_id="u-dev", content="second", client_msg_id="c-9")
    event = make_message(
        room, kind="event", content="x", event={"key": "room_created", "actor_id": ADMIN_ID, "title": "t"}
    )

    response = client.get("/api/v1/messages", {"room_id": GROUP})

    assert response.status_code == 200
    listed = response.json()
    assert [message["id"] for message in listed] == [first.message_id, second.message_id, event.message_id]
    assert list(listed[0]) == MESSAGE_KEYS
    assert listed[0]["mentions"] == ["u-dev"]
    assert list(listed[1]) == [*MESSAGE_KEYS, "client_msg_id"]
    assert listed[1]["client_msg_id"] == "c-9"
    assert list(listed[2]) == ["id", "sender_id", "kind", "content", "event", "created_at", "mentions"]
    assert all(TIME.match(message["created_at"]) for message in listed)


def test_list_messages_of_an_empty_room_is_an_empty_array(client):
    assert client.get("/api/v1/messages", {"room_id": GROUP}).json() == []


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ({}, 400, "room_id is required"),
        ({"room_id": ""}, 400, "room_id is required"),
        ({"room_id": "   "}, 400, "room_id is required"),
        ({"room_id": "room-nope"}, 404, "room not found"),
    ],
)
def test_list_messages_checks_in_order(client, query, status, text):
    response = client.get("/api/v1/messages", query)

    assert (response.status_code, error_text(response)) == (status, text)


# --- send -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SEND_PATHS)
def test_send_returns_201_with_the_stored_message(client, path):
    mark = event_mark()

    response = _send(client, path, content="  hello there \n")

    assert response.status_code == 201
    message = response.json()
    assert list(message) == MESSAGE_KEYS
    assert re.match(r"^msg-\d{19}$", message["id"])
    assert message["sender_id"] == ADMIN_ID
    assert message["kind"] == "message"
    assert message["content"] == "hello there"
    assert TIME.match(message["created_at"])
    assert message["mentions"] == []
    stored = Message.objects.get(message_id=message["id"])
    assert (stored.room_id, stored.content, stored.client_msg_id, stored.event) == (
        GROUP,
        "hello there",
        None,
        None,
    )
    assert event_types_after(mark) == ["message.created"]


def test_the_sender_need_not_be_a_room_member(client):
    assert _send(client, sender_id="u-ops").status_code == 201


def test_mentions_are_resolved_from_the_stored_content(client):
    response = _send(client, content='@ops and <at user_id="u-dev">Dev</at> please, mail@dev')

    assert response.json()["mentions"] == ["u-dev", "u-ops"]


def test_mention_id_prefixes_an_at_tag_with_the_user_name(client):
    response = _send(client, content="  please look  ", mention_id=" u-dev ")

    assert response.json()["content"] == '<at user_id="u-dev">dev</at> please look'
    assert response.json()["mentions"] == ["u-dev"]


@pytest.mark.parametrize(
    "content", ["@dev please look", '<at user_id="u-dev">someone</at> look', "ping @DEV"]
)
def test_mention_id_adds_nothing_when_the_content_already_mentions_the_user(client, content):
    response = _send(client, content=content, mention_id="u-dev")

    assert response.json()["content"] == content
    assert response.json()["mentions"] == ["u-dev"]


def test_mention_id_prefix_comes_first_in_mentions(client):
    response = _send(client, content="@ops look", mention_id="u-dev")

    assert response.json()["content"] == '<at user_id="u-dev">dev</at> @ops look'
    assert response.json()["mentions"] == ["u-dev", "u-ops"]


@pytest.mark.parametrize("mention_id", ["", "   ", None, ABSENT])
def test_a_blank_mention_id_is_ignored(client, mention_id):
    response = _send(client, mention_id=mention_id)

    assert response.json()["content"] == "hi"


# --- client_msg_id ----------------------------------------------------------------------------------


def test_client_msg_id_is_echoed(client):
    response = _send(client, client_msg_id="  c-1  ")

    assert list(response.json()) == [*MESSAGE_KEYS, "client_msg_id"]
    assert response.json()["client_msg_id"] == "c-1"


@pytest.mark.parametrize("path", SEND_PATHS)
def test_a_repeated_client_msg_id_returns_the_stored_message_with_200_and_writes_nothing(client, path):
    first = _send(client, path, client_msg_id="c-1", content="first")
    mark = event_mark()
    before = row_counts()

    again = _send(client, path, client_msg_id=" c-1 ", content="changed", mention_id="u-dev")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert row_counts() == before
    assert event_types_after(mark) == []


def test_client_msg_id_is_scoped_to_the_sender(client):
    first = _send(client, client_msg_id="c-1")
    other_sender = _send(client, client_msg_id="c-1", sender_id="u-dev")

    assert other_sender.status_code == 201
    assert other_sender.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_client_msg_id_is_absent(client, blank):
    first = _send(client, client_msg_id=blank)
    second = _send(client, client_msg_id=blank)

    assert (first.status_code, second.status_code) == (201, 201)
    assert "client_msg_id" not in first.json()
    assert Message.objects.filter(room_id=GROUP).count() == 2


def test_the_replay_check_runs_after_every_validation_check(client):
    _send(client, client_msg_id="c-1")

    response = _send(client, client_msg_id="c-1", room_id="room-nope")

    assert (response.status_code, error_text(response)) == (400, "room not found")


def test_a_replay_into_another_room_still_returns_the_original(client):
    original = _send(client, client_msg_id="c-1").json()
    other = make_room(members=[ADMIN_ID])

    again = _send(client, client_msg_id="c-1", room_id=other.id)

    assert (again.status_code, again.json()) == (200, original)
    assert not other.messages.exists()


# --- checks -----------------------------------------------------------------------------------------


SEND_BASE = {
    "room_id": GROUP,
    "sender_id": ADMIN_ID,
    "content": "hi",
    "mention_id": "u-dev",
    "client_msg_id": "c-1",
}
SEND_CHECKS = [
    Check("room_id required", {"room_id": "  "}, 400, "room_id is required"),
    Check("sender_id required", {"sender_id": ""}, 400, "sender_id is required"),
    Check("content required", {"content": " \n\t "}, 400, "content is required"),
    Check("sender unknown", {"sender_id": " "}, 400, "sender not found"),
    Check("mention unknown", {"mention_id": "u-nobody"}, 400, "mentioned user not found"),
    Check("room unknown", {"room_id": "room-nope"}, 400, "room not found"),
    Check(
        "client_msg_id length",
        {"client_msg_id": "k" * 129},
        400,
        "client_msg_id must be at most 128 characters",
    ),
]


@pytest.mark.parametrize("with_later_defects", [False, True], ids=["alone", "before-later-checks"])
@pytest.mark.parametrize("index", range(len(SEND_CHECKS)), ids=[check.name for check in SEND_CHECKS])
@pytest.mark.parametrize("path", SEND_PATHS)
def test_send_checks_in_order(client, path, index, with_later_defects):
    check = SEND_CHECKS[index]
    before = row_counts()

    response = post_json(
        client, path, failing_body(SEND_BASE, SEND_CHECKS, index, with_later_defects=with_later_defects)
    )

    assert (response.status_code, error_text(response)) == (check.status, check.text)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"room_id": ABSENT}, "room_id is required"),
        ({"sender_id": ABSENT}, "sender_id is required"),
        ({"content": ABSENT}, "content is required"),
        ({"content": ""}, "content is required"),
        ({"sender_id": f" {ADMIN_ID}"}, "sender not found"),
        ({"sender_id": "u-nobody"}, "sender not found"),
    ],
)
def test_send_check_variants(client, overrides, text):
    response = post_json(client, "/api/v1/messages", {**SEND_BASE, **overrides})

    assert (response.status_code, error_text(response)) == (400, text)


def test_an_unknown_room_is_400_when_sending(client):
    response = _send(client, room_id="room-nope")

    assert response.status_code == 400
    assert not Event.objects.filter(type="message.created").exists()
