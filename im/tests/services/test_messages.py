"""im/services/messages.py: the exact `message.created` events of each message write (events.md §2–§4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import Invalid
from im import selectors
from im.identity import ADMIN_ID
from im.models import ChatUser, Event, EventStream, Message
from im.serializers import UserSerializer
from im.services import messages
from im.tests.factories import event_mark, events_after, make_room, make_user, row_counts

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _recipients(event: Event) -> list[tuple[str, bool]]:
    return sorted(event.recipients.values_list("recipient_id", "mentioned"))


def test_message_send_emits_message_created_with_message_and_full_sender(team):
    mark = event_mark()

    sent = messages.message_send(room_id="room-group", sender_id=ADMIN_ID, content="@dev build it")

    [event] = events_after(mark)
    message = sent.message
    assert event.type == "message.created"
    assert list(event.payload) == ["type", "room_id", "message", "sender"]
    assert event.payload["room_id"] == "room-group"
    assert event.payload["message"] == {
        "id": message.message_id,
        "sender_id": ADMIN_ID,
        "kind": "message",
        "content": "@dev build it",
        "created_at": event.payload["message"]["created_at"],
        "mentions": ["u-dev"],
    }
    assert event.payload["sender"] == UserSerializer(ChatUser.objects.get(pk=ADMIN_ID)).data
    assert (event.stream, event.room_id, event.message_id) == ("im", "room-group", message.message_id)


def test_message_created_bot_payload(team):
    sent = messages.message_send(room_id="room-group", sender_id=ADMIN_ID, content="@dev go")

    event = Event.objects.get(message_id=sent.message.message_id)
    millis = (sent.message.created_at - EPOCH) // timedelta(milliseconds=1)
    assert list(event.bot_payload) == [
        "message_id",
        "room_id",
        "chat_id",
        "chat_type",
        "sender",
        "text",
        "timestamp",
    ]
    assert event.bot_payload == {
        "message_id": sent.message.message_id,
        "room_id": "room-group",
        "chat_id": "room-group",
        "chat_type": "group",
        "sender": {"id": ADMIN_ID, "username": "admin", "display_name": "admin"},
        "text": "@dev go",
        "timestamp": str(millis),
    }


def test_bot_payload_chat_type_is_direct_in_direct_rooms_and_omits_empty_sender_names(team):
    make_user("u-anon", name="", handle="")

    sent = messages.message_send(room_id="room-direct", sender_id="u-anon", content="hi")

    bot_payload = Event.objects.get(message_id=sent.message.message_id).bot_payload
    assert bot_payload["chat_type"] == "direct"
    assert bot_payload["sender"] == {"id": "u-anon"}


@pytest.mark.parametrize(
    ("room_id", "sender_id", "content", "recipients"),
    [
        ("room-direct", ADMIN_ID, "hello", [("u-dev", False)]),
        ("room-direct", ADMIN_ID, "@dev hello", [("u-dev", True)]),
        ("room-direct", "u-dev", "hello", [(ADMIN_ID, False)]),
        ("room-group", ADMIN_ID, "hello all", []),
        ("room-group", ADMIN_ID, "@dev hello", [("u-dev", True)]),
        ("room-group", ADMIN_ID, '<at user_id="u-ops">ops</at> and @dev', [("u-dev", True), ("u-ops", True)]),
        ("room-group", ADMIN_ID, "@zed is not a member", []),
        ("room-group", "u-dev", "@dev talking to myself", []),
        ("room-group", "u-zed", "@ops from outside", [("u-ops", True)]),
    ],
)
def test_message_recipients_follow_the_bot_delivery_rules(team, room_id, sender_id, content, recipients):
    sent = messages.message_send(room_id=room_id, sender_id=sender_id, content=content)

    assert _recipients(Event.objects.get(message_id=sent.message.message_id)) == recipients


def test_a_two_member_group_room_still_needs_a_mention(team):
    make_room(room_id="room-pair", members=[ADMIN_ID, "u-dev"])

    sent = messages.message_send(room_id="room-pair", sender_id=ADMIN_ID, content="hello")

    assert _recipients(Event.objects.get(message_id=sent.message.message_id)) == []


def test_a_client_msg_id_replay_emits_nothing(team):
    first = messages.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")
    mark = event_mark()

    again = messages.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")

    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert events_after(mark) == []


def test_a_client_msg_id_retry_that_loses_the_insert_race_returns_the_winner(team, monkeypatch):
    winner = messages.message_send(
        room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1"
    )
    lookups = iter([None])  # the retry's pre-insert lookup runs before the winner committed
    find = selectors.message_find_by_client_id
    monkeypatch.setattr(
        selectors, "message_find_by_client_id", lambda **kwargs: next(lookups, None) or find(**kwargs)
    )
    mark = event_mark()

    retry = messages.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")

    assert (retry.created, retry.message.pk) == (False, winner.message.pk)
    assert Message.objects.filter(client_msg_id="c-1").count() == 1
    assert events_after(mark) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"room_id": "room-nope", "sender_id": ADMIN_ID, "content": "hi"}, "room not found"),
        (
            {"room_id": "room-group", "sender_id": ADMIN_ID, "content": "hi", "mention_id": "u-x"},
            "mentioned user not found",
        ),
    ],
)
def test_rejected_sends_emit_nothing_and_write_nothing(team, rings, kwargs, error):
    before = row_counts()

    with pytest.raises(Invalid) as rejected:
        messages.message_send(**kwargs)

    assert rejected.value.message == error
    assert row_counts() == before
    assert rings == []


def _feishu_message(message_id: str = "om_1") -> dict:
    return {
        "id": message_id,
        "sender_id": "ou_manager",
        "kind": "message",
        "content": "please review",
        "created_at": "2026-04-26T09:00:00.123Z",
        "mentions": ["ou_dev"],
    }


def test_message_relay_emits_message_created_on_its_stream_for_the_mentioned_recipient():
    mark = event_mark()

    messages.message_relay(
        stream=EventStream.FEISHU, room_id="oc_alpha", message=_feishu_message(), recipient_id="ou_dev"
    )

    [event] = events_after(mark)
    assert event.type == "message.created"
    assert list(event.payload) == ["type", "room_id", "message"]
    assert event.payload == {"type": "message.created", "room_id": "oc_alpha", "message": _feishu_message()}
    assert (event.stream, event.room_id, event.message_id, event.bot_payload) == (
        "feishu",
        "oc_alpha",
        "om_1",
        None,
    )
    assert _recipients(event) == [("ou_dev", True)]
    assert not Message.objects.filter(message_id="om_1").exists()


def test_message_relay_leaves_ids_too_long_to_index_out_of_the_columns_but_in_the_payload():
    long_chat, long_message = "oc_" + "c" * 200, "om_" + "m" * 200
    mark = event_mark()

    messages.message_relay(
        stream=EventStream.FEISHU,
        room_id=long_chat,
        message=_feishu_message(long_message),
        recipient_id="ou_dev",
    )

    [event] = events_after(mark)
    assert (event.room_id, event.message_id) == (None, None)
    assert (event.payload["room_id"], event.payload["message"]["id"]) == (long_chat, long_message)
