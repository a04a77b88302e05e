"""im/services/rooms.py: the exact events each room write emits, and rejected writes leaving no trace."""

from __future__ import annotations

import pytest

from core.errors import Invalid, NotFound
from im import selectors
from im.identity import ADMIN_ID
from im.models import ChatUser, Message
from im.serializers import RoomSerializer
from im.services import rooms
from im.tests.factories import event_mark, event_types_after, events_after, make_room, make_user, row_counts

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


def _presented(room_id: str) -> dict:
    return RoomSerializer(selectors.room_get(room_id, presentable=True)).data


def test_room_create_emits_room_created_with_the_presented_room():
    make_user("u-bob")
    mark = event_mark()

    room = rooms.room_create(creator_id=ADMIN_ID, title="launch", member_ids=["u-bob"], locale="en")

    [event] = events_after(mark)
    assert event.type == "room.created"
    assert list(event.payload) == ["type", "room_id", "room"]
    assert event.payload == {"type": "room.created", "room_id": room.id, "room": _presented(room.id)}
    assert event.payload["room"]["messages"][0]["content"] == 'admin created the room "launch"'
    assert (event.stream, event.room_id, event.message_id, event.bot_payload) == ("im", room.id, None, None)
    assert not event.recipients.exists()


def test_room_created_event_presents_direct_rooms_by_the_other_members_name():
    make_user("u-bob")
    mark = event_mark()

    room, created = rooms.direct_room_ensure(
        user=ChatUser.objects.get(pk="u-bob"), title="bob", first_sender_id="u-bob"
    )
    rooms.emit_room_created(room)

    assert created
    [event] = events_after(mark)
    assert event.payload["room"]["title"] == "bob"
    assert event.payload["room"]["is_direct"] is True
    assert event.payload["room"]["description"] == "Bootstrap room for admin and bob."
    [greeting] = event.payload["room"]["messages"]
    assert (greeting["sender_id"], greeting["kind"], greeting["content"]) == (
        "u-bob",
        "message",
        "Bootstrap room created for admin and bob.",
    )


def test_direct_room_ensure_reuses_an_existing_pair_room_and_emits_nothing():
    make_user("u-bob")
    existing = make_room(members=["u-bob", ADMIN_ID], is_direct=True)
    mark = event_mark()

    room, created = rooms.direct_room_ensure(
        user=ChatUser.objects.get(pk="u-bob"), title="bob", first_sender_id="u-bob"
    )

    assert (room.id, created) == (existing.id, False)
    assert events_after(mark) == []


def test_room_invite_emits_members_added_with_the_presented_room():
    make_user("u-bob")
    group = make_room(members=[ADMIN_ID])
    mark = event_mark()

    rooms.room_invite(room_id=group.id, inviter_id=ADMIN_ID, user_ids=["u-bob"], locale="zh")

    [event] = events_after(mark)
    assert event.type == "room.members_added"
    assert list(event.payload) == ["type", "room_id", "room"]
    assert event.payload == {"type": "room.members_added", "room_id": group.id, "room": _presented(group.id)}
    assert event.payload["room"]["members"] == [ADMIN_ID, "u-bob"]
    assert event.payload["room"]["messages"][-1]["content"] == "admin 邀请 bob 加入了房间"
    assert event.room_id == group.id


def test_room_add_agent_defaults_the_inviter_to_the_admin():
    make_user("u-bot")
    group = make_room(members=[ADMIN_ID])
    mark = event_mark()

    rooms.room_add_agent(room_id=f" {group.id} ", agent_user_id="u-bot", inviter_id="  ")

    assert event_types_after(mark) == ["room.members_added"]
    assert Message.objects.filter(room=group).last().event["actor_id"] == ADMIN_ID


def test_room_delete_emits_room_deleted_with_only_the_id():
    room = make_room()
    mark = event_mark()

    rooms.room_delete(room_id=room.id)

    [event] = events_after(mark)
    assert (event.type, event.payload, event.room_id) == (
        "room.deleted",
        {"type": "room.deleted", "room_id": room.id},
        room.id,
    )


@pytest.mark.parametrize(
    ("service", "kwargs", "error"),
    [
        ("room_create", {"creator_id": ADMIN_ID, "title": ""}, "title is required"),
        (
            "room_create",
            {"creator_id": ADMIN_ID, "title": "t", "member_ids": ["u-nobody"]},
            "user not found: u-nobody",
        ),
        (
            "room_invite",
            {"room_id": "room-group", "inviter_id": ADMIN_ID, "user_ids": ["u-dev"]},
            "no new users to invite",
        ),
        (
            "room_invite",
            {"room_id": "room-direct", "inviter_id": ADMIN_ID, "user_ids": ["u-ops"]},
            "cannot add members to direct room",
        ),
        (
            "room_add_agent",
            {"room_id": "room-group", "agent_user_id": "u-dev", "inviter_id": ""},
            "no new users to invite",
        ),
        ("room_delete", {"room_id": "room-nope"}, "room not found"),
    ],
)
def test_rejected_writes_emit_nothing_and_write_nothing(team, rings, service, kwargs, error):
    before = row_counts()

    with pytest.raises((Invalid, NotFound)) as rejected:
        getattr(rooms, service)(**kwargs)

    assert rejected.value.message == error
    assert row_counts() == before
    assert rings == []
