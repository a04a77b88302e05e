"""Participant send (participants.md §3): body resolution, check order, message_id replace and events."""

from __future__ import annotations

import pytest

from agents.models import Agent
from core.config import clear_config_cache
from im.events import MESSAGE_CREATED
from im.identity import ADMIN_ID
from im.models import Event, EventRecipient, Message, Room, Thread
from im.tests.factories import (
    error_text,
    event_mark,
    events_after,
    make_agent,
    make_message,
    make_room,
    make_user,
    post_json,
    row_counts,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

TOKEN = "participant-send-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DIRECT = "room-dev-direct"
GROUP = "room-team"
OTHER = "room-other"


def sent():
    """Messages of this module's rooms (the first-run seed has its own)."""
    return Message.objects.filter(room_id__in=[DIRECT, GROUP, OTHER])


def url(participant_id: str = "pt-dev", channel: str = "csgclaw") -> str:
    return f"/api/v1/channels/{channel}/participants/{participant_id}/messages"


@pytest.fixture(autouse=True)
def server_config(settings, tmp_path):
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    clear_config_cache()
    yield
    clear_config_cache()


@pytest.fixture(autouse=True)
def team() -> None:
    for agent_id in ("u-dev", "u-bob"):
        make_user(agent_id)
        make_agent(agent_id)
    make_room(room_id=DIRECT, members=[ADMIN_ID, "u-dev"], is_direct=True)
    make_room(room_id=GROUP, members=[ADMIN_ID, "u-dev", "u-bob"])
    make_room(room_id=OTHER, members=[ADMIN_ID, "u-bob"])


def send(client, body, participant_id: str = "pt-dev", **headers: str):
    return post_json(client, url(participant_id), body, **{**AUTH, **headers})


def test_send_posts_as_the_participants_user_and_answers_200(client) -> None:
    mark = event_mark()

    response = send(client, {"room_id": f" {DIRECT} ", "text": "  done  "})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    message = sent().get()
    assert response.json() == {"message_id": message.message_id}
    assert message.message_id.startswith("msg-")
    assert (message.sender_id, message.room_id, message.content) == ("u-dev", DIRECT, "done")
    [event] = events_after(mark)
    assert event.type == MESSAGE_CREATED
    assert event.payload["message"]["id"] == message.message_id
    assert event.payload["sender"]["id"] == "u-dev"
    assert event.participant_payload["sender_id"] == "u-dev"
    assert list(event.recipients.values_list("recipient_id", "mentioned")) == [(ADMIN_ID, False)]


@pytest.mark.parametrize(
    "body",
    [
        {"chat_id": DIRECT, "text": "hi"},
        {"room_id": " ", "chat_id": DIRECT, "text": "hi"},
        {"context": {"chat_id": DIRECT, "other": 1}, "text": "hi"},
        {"room_id": DIRECT, "text": " ", "content": "hi"},
        {"room_id": DIRECT, "content": " hi "},
        {"room_id": DIRECT, "text": "hi", "attachments": [{"name": "x"}], "unknown": True},
    ],
)
def test_room_and_text_fallbacks(client, body) -> None:
    response = send(client, body)

    assert response.status_code == 200, response.content
    message = sent().get()
    assert (message.room_id, message.content) == (DIRECT, "hi")


@pytest.mark.parametrize("participant_id", ["pt-dev", "u-dev", "dev", "agent-dev", "PT-DEV".lower()])
def test_any_alias_of_the_agent_sends_as_its_user(client, participant_id: str) -> None:
    assert send(client, {"room_id": DIRECT, "text": "hi"}, participant_id).status_code == 200
    assert sent().get().sender_id == "u-dev"


def test_admin_participant_sends_as_the_admin(client) -> None:
    assert send(client, {"room_id": DIRECT, "text": "hi"}, "pt-admin").status_code == 200
    assert sent().get().sender_id == ADMIN_ID


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ("", 400, "decode request: EOF"),
        ("[]", 400, "decode request: body must be a JSON object"),
        ({"room_id": 1}, 400, 'decode request: field "room_id" must be a string'),
        ({"context": "x"}, 400, 'decode request: field "context" must be an object'),
        ({"metadata": []}, 400, 'decode request: field "metadata" must be an object'),
        ({"context": {"chat_id": 5}}, 400, 'decode request: field "context.chat_id" must be a string'),
        ({}, 400, "room_id is required"),
        ({"room_id": "x"}, 400, "text is required"),
        ({"room_id": "nowhere", "text": "hi"}, 400, "room not found"),
        (
            {"room_id": DIRECT, "text": "hi", "thread_root_id": "msg-none"},
            400,
            "thread root message not found",
        ),
        ({"room_id": DIRECT, "text": "hi", "topic_id": "msg-none"}, 400, "thread root message not found"),
        (
            {"room_id": DIRECT, "text": "hi", "context": {"topic_id": "msg-none"}},
            400,
            "thread root message not found",
        ),
        (
            {"room_id": DIRECT, "text": "hi", "message_id": "m" * 129},
            400,
            "message_id must be at most 128 characters",
        ),
        ({"room_id": DIRECT, "text": "hi", "message_id": "a/b"}, 400, 'message_id "a/b" is invalid'),
        ({"room_id": DIRECT, "text": "hi", "message_id": "a b"}, 400, 'message_id "a b" is invalid'),
        ({"room_id": DIRECT, "text": "hi", "message_id": ".."}, 400, 'message_id ".." is invalid'),
        ({"room_id": DIRECT, "text": "hi", "message_id": "a\\b"}, 400, 'message_id "a\\b" is invalid'),
    ],
)
def test_checks(client, body, status: int, text: str) -> None:
    before = row_counts()

    response = send(client, body)

    assert response.status_code == status
    assert error_text(response) == text
    assert row_counts() == before


def test_sender_not_found_comes_after_text_and_before_room(client) -> None:
    assert error_text(send(client, {"room_id": "nowhere", "text": "hi"}, "pt-ghost")) == "sender not found"
    assert error_text(send(client, {"room_id": "nowhere"}, "pt-ghost")) == "text is required"


def test_an_agent_whose_user_is_gone_is_not_a_sender(client) -> None:
    make_agent("u-lost")
    assert error_text(send(client, {"room_id": DIRECT, "text": "hi"}, "pt-lost")) == "sender not found"


def test_a_multipart_body_carries_its_json_in_payload(client) -> None:
    response = client.post(url(), data={"payload": '{"room_id":"x","text":"y"}'}, headers=AUTH)
    assert response.status_code == 400
    assert error_text(response) == "room not found"


def test_a_body_over_one_mib_is_413(client) -> None:
    response = send(client, {"room_id": DIRECT, "text": "x" * (1024 * 1024)})
    assert response.status_code == 413
    assert error_text(response) == "request body too large"


@pytest.mark.parametrize(
    "thread_fields",
    [
        lambda root: {"thread_root_id": root, "topic_id": "msg-ignored"},
        lambda root: {"thread_root_id": " ", "topic_id": root},
        lambda root: {"context": {"topic_id": root}},
    ],
)
def test_a_thread_root_makes_a_reply_with_its_thread_state_and_events(client, thread_fields) -> None:
    room = Room.objects.get(pk=GROUP)
    before = make_message(room, content="before")
    root = make_message(room, content="root")
    mark = event_mark()

    body = {"room_id": GROUP, "text": '<at user_id="u-bob">bob</at> reply', **thread_fields(root.message_id)}
    response = send(client, body)

    assert response.status_code == 200, response.content
    reply = Message.objects.get(message_id=response.json()["message_id"])
    assert reply.thread_root_id == root.message_id
    thread = Thread.objects.get(room_id=GROUP, root_message_id=root.message_id)
    assert [message["id"] for message in thread.context] == [before.message_id, root.message_id]
    created, updated = events_after(mark)
    assert (created.type, updated.type) == (MESSAGE_CREATED, "thread.updated")
    assert created.payload["message"]["relates_to"] == {"rel_type": "m.thread", "event_id": root.message_id}
    assert updated.payload["thread"]["replies"][0]["id"] == reply.message_id
    frame = created.participant_payload
    assert list(frame)[-3:] == ["thread_root_id", "thread_context", "context"]
    assert frame["thread_root_id"] == root.message_id
    assert frame["thread_context"] == {
        "root_message_id": root.message_id,
        "context": thread.context,
        "summary": thread.summary,
    }
    assert list(frame["context"]) == [
        "channel",
        "chat_id",
        "chat_type",
        "topic_id",
        "sender_id",
        "message_id",
        "raw",
    ]
    assert frame["context"]["topic_id"] == root.message_id
    assert frame["context"]["raw"] == {"room_id": GROUP, "thread_root_id": root.message_id}
    assert "thread" not in (created.bot_payload or {})
    assert EventRecipient.objects.filter(event=created, recipient_id="u-bob").exists()


def test_a_top_level_send_has_no_thread_keys(client) -> None:
    response = send(client, {"room_id": GROUP, "text": "top"})
    frame = Event.objects.get(message_id=response.json()["message_id"]).participant_payload
    assert "thread_root_id" not in frame
    assert "thread_context" not in frame
    assert "topic_id" not in frame["context"]
    assert frame["context"]["raw"] == {"room_id": GROUP, "thread_root_id": ""}
    assert Message.objects.get(message_id=response.json()["message_id"]).thread_root_id is None


def test_a_reply_to_a_reply_is_refused(client) -> None:
    root = make_message(Room.objects.get(pk=GROUP), content="root")
    reply = send(client, {"room_id": GROUP, "text": "r", "thread_root_id": root.message_id}).json()
    mark = event_mark()
    response = send(client, {"room_id": GROUP, "text": "r2", "thread_root_id": reply["message_id"]})
    assert (response.status_code, error_text(response)) == (400, "cannot reply to a thread reply")
    assert events_after(mark) == []


def test_replacing_a_reply_emits_thread_updated_and_rebuilds_the_rooms_threads(client) -> None:
    room = Room.objects.get(pk=GROUP)
    root = make_message(room, content="root")
    body = {"room_id": GROUP, "text": "first", "thread_root_id": root.message_id, "message_id": "pico-r"}
    send(client, body)
    thread = Thread.objects.get(root_message_id=root.message_id)
    Thread.objects.filter(pk=thread.pk).update(summary={"stale": True})
    mark = event_mark()

    assert send(client, {**body, "text": "second"}).status_code == 200

    created, updated = events_after(mark)
    assert (created.type, updated.type) == (MESSAGE_CREATED, "thread.updated")
    assert EventRecipient.objects.filter(event=created).count() == 0
    assert updated.payload["thread"]["replies"][0]["content"] == "second"
    rebuilt = Thread.objects.get(pk=thread.pk)
    assert rebuilt.summary["root_excerpt"] == "root"
    assert rebuilt.created_at == thread.created_at

    mark = event_mark()
    assert send(client, {"room_id": GROUP, "text": "now top", "message_id": "pico-r"}).status_code == 200
    assert [event.type for event in events_after(mark)] == [MESSAGE_CREATED]
    assert Message.objects.get(message_id="pico-r").thread_root_id is None


# --- path, method, auth (§3.4 checks 1–3) -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/channels/feishu/participants/pt-dev/messages",
        "/api/v1/channels/slack/participants/pt-dev/messages",
        "/api/v1/channels/csgclaw/participants//messages",
        "/api/v1/channels/csgclaw/participants/%20/messages",
        "/api/v1/channels/csgclaw/participants/pt-dev/messages/",
        "/api/v1/channels/csgclaw/participants/pt-dev/messages/x",
    ],
)
def test_not_found(client, path: str) -> None:
    response = client.post(path, data="{}", content_type="application/json", headers=AUTH)
    assert response.status_code == 404
    assert error_text(response) == "404 page not found"


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_post_only_before_auth(client, method: str) -> None:
    response = getattr(client, method)(url())
    assert response.status_code == 405
    assert error_text(response) == "method not allowed"


def test_bearer_is_required(client) -> None:
    response = post_json(client, url(), {"room_id": DIRECT, "text": "hi"})
    assert response.status_code == 401
    assert error_text(response) == "unauthorized"
    assert not sent().exists()


# The token is read on a bridge database thread: it must see committed rows.
@pytest.mark.django_db(transaction=True)
def test_an_agents_own_token_opens_only_its_own_participant(client) -> None:
    own = {"Authorization": f"Bearer {Agent.objects.get(pk='u-dev').api_token}"}
    body = {"room_id": DIRECT, "text": "hi"}

    assert post_json(client, url("pt-dev"), body, **own).status_code == 200
    assert post_json(client, url("pt-bob"), body, **own).status_code == 401


# --- message_id (§3.6) ------------------------------------------------------------------------------


def test_a_new_caller_chosen_id_is_used(client) -> None:
    response = send(client, {"room_id": DIRECT, "text": "hi", "message_id": "pico-42"})

    assert response.json() == {"message_id": "pico-42"}
    assert sent().get().message_id == "pico-42"


def test_reusing_an_id_replaces_the_message_in_place(client) -> None:
    first = send(
        client, {"room_id": GROUP, "text": "draft @bob", "message_id": "pico-1", "metadata": {"a": 1}}
    )
    original = Message.objects.get(message_id="pico-1")
    later = make_message(Room.objects.get(pk=GROUP), content="after")
    mark = event_mark()

    second = send(
        client, {"room_id": GROUP, "text": 'final <at user_id="pt-admin">a</at>', "message_id": "pico-1"}
    )

    assert first.json() == second.json() == {"message_id": "pico-1"}
    replaced = Message.objects.get(message_id="pico-1")
    assert replaced.content == 'final <at user_id="u-admin">a</at>'
    assert replaced.mentions == [ADMIN_ID]
    assert replaced.metadata is None
    assert replaced.created_at == original.created_at
    assert replaced.seq == original.seq < later.seq
    [event] = events_after(mark)
    assert event.type == MESSAGE_CREATED
    assert event.message_id == "pico-1"
    assert event.payload["message"]["content"] == replaced.content
    assert not EventRecipient.objects.filter(event=event).exists()
    assert sent().count() == 2


def test_a_replacement_cannot_make_a_message_a_reply_to_itself(client) -> None:
    send(client, {"room_id": GROUP, "text": "root", "message_id": "pico-root"})
    mark = event_mark()

    response = send(
        client, {"room_id": GROUP, "text": "again", "message_id": "pico-root", "topic_id": "pico-root"}
    )

    assert (response.status_code, error_text(response)) == (400, "a message cannot reply to itself")
    stored = Message.objects.get(message_id="pico-root")
    assert (stored.content, stored.thread_root_id) == ("root", None)
    assert not events_after(mark)


@pytest.mark.parametrize(
    ("participant_id", "room_id", "text"),
    [
        ("pt-bob", GROUP, 'message id "pico-1" already exists for another sender'),
        ("pt-bob", OTHER, 'message id "pico-1" already exists for another sender'),
        ("pt-dev", DIRECT, 'message id "pico-1" already exists in another room'),
    ],
)
def test_an_id_of_another_sender_or_room_is_refused(client, participant_id, room_id, text) -> None:
    send(client, {"room_id": GROUP, "text": "mine", "message_id": "pico-1"})
    before = row_counts()

    response = send(client, {"room_id": room_id, "text": "theirs", "message_id": "pico-1"}, participant_id)

    assert response.status_code == 400
    assert error_text(response) == text
    assert row_counts() == before
    assert Message.objects.get(message_id="pico-1").content == "mine"


def test_metadata_is_stored_and_echoed_when_not_empty(client) -> None:
    send(client, {"room_id": DIRECT, "text": "a", "metadata": {"z": 1, "a": {"b": [1]}}})
    send(client, {"room_id": DIRECT, "text": "b", "metadata": {}})

    listed = client.get("/api/v1/messages", {"room_id": DIRECT}).json()

    assert listed[0]["metadata"] == {"z": 1, "a": {"b": [1]}}
    assert list(listed[0]["metadata"]) == ["z", "a"]
    assert "metadata" not in listed[1]


def test_an_alias_tag_is_stored_as_the_user_id_and_reaches_that_users_streams(client) -> None:
    response = send(client, {"room_id": GROUP, "text": '<at user_id="pt-bob">bob</at> check'})

    message = Message.objects.get(message_id=response.json()["message_id"])
    assert message.content == '<at user_id="u-bob">bob</at> check'
    assert message.mentions == ["u-bob"]
    event = Event.objects.get(message_id=message.message_id)
    assert list(event.recipients.values_list("recipient_id", "mentioned")) == [("u-bob", True)]
