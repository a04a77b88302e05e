"""im/services/users.py: the first-run seed, agents' IM users, and what a user delete takes and emits."""

from __future__ import annotations

import pytest

from core.errors import Conflict, Invalid, NotFound
from im import selectors
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Room, RoomMember
from im.serializers import RoomSerializer, UserSerializer
from im.services import users
from im.tests.factories import (
    event_mark,
    events_after,
    make_message,
    make_room,
    make_user,
    row_counts,
    seed_room,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


# --- first-run seed ---------------------------------------------------------------------------------


def _wipe_im() -> None:
    Room.objects.all().delete()
    ChatUser.objects.all().delete()


def test_seed_writes_exactly_the_first_run_state_and_no_events():
    _wipe_im()
    mark = event_mark()

    users.seed_ensure()

    admin, manager = ChatUser.objects.get(pk=ADMIN_ID), ChatUser.objects.get(pk=MANAGER_ID)
    assert (admin.name, admin.handle, admin.role, admin.avatar, admin.accent_hex) == (
        "admin",
        "admin",
        "admin",
        "AD",
        "#dc2626",
    )
    assert (manager.name, manager.handle, manager.role, manager.avatar, manager.accent_hex) == (
        "manager",
        "manager",
        "manager",
        "MG",
        "#0f766e",
    )
    assert ChatUser.objects.count() == 2
    [room] = Room.objects.all()
    assert (room.title, room.description, room.is_direct) == (
        "admin & manager",
        "Bootstrap room for admin and manager.",
        True,
    )
    assert list(room.memberships.order_by("position").values_list("user_id", flat=True)) == [
        ADMIN_ID,
        MANAGER_ID,
    ]
    [message] = room.messages.all()
    assert (message.sender_id, message.kind, message.content, message.mentions, message.event) == (
        MANAGER_ID,
        "message",
        "Bootstrap room created for admin and manager.",
        [],
        None,
    )
    assert RoomSerializer(selectors.room_get(room.id, presentable=True)).data["title"] == "manager"
    assert events_after(mark) == []


def test_seed_is_idempotent():
    before = row_counts()
    room_id = seed_room().id

    users.seed_ensure()
    users.seed_ensure()

    assert row_counts() == before
    assert seed_room().id == room_id


def test_seed_forces_name_and_role_back_on_the_user_with_the_handle():
    ChatUser.objects.filter(pk=MANAGER_ID).update(name="boss", role="worker")
    ChatUser.objects.filter(pk=ADMIN_ID).update(name="root", role="manager")
    mark = event_mark()

    users.seed_ensure()

    assert ChatUser.objects.get(pk=MANAGER_ID).name == "manager"
    assert ChatUser.objects.get(pk=MANAGER_ID).role == "manager"
    assert (ChatUser.objects.get(pk=ADMIN_ID).name, ChatUser.objects.get(pk=ADMIN_ID).role) == (
        "admin",
        "admin",
    )
    assert events_after(mark) == []


def test_seed_recreates_the_room_when_no_direct_admin_manager_room_is_left():
    old = seed_room()
    old.delete()
    make_room(room_id="room-group-pair", members=[ADMIN_ID, MANAGER_ID])
    make_user("u-bob")
    make_room(room_id="room-direct-three", members=[ADMIN_ID, MANAGER_ID, "u-bob"], is_direct=True)

    users.seed_ensure()

    recreated = seed_room()
    assert recreated.id not in {old.id, "room-group-pair", "room-direct-three"}
    assert recreated.is_direct


def test_seed_keeps_an_existing_direct_admin_manager_room_whatever_its_title():
    room = seed_room()
    Room.objects.filter(pk=room.pk).update(title="renamed")

    users.seed_ensure()

    assert Room.objects.filter(is_direct=True).count() == 1
    assert seed_room().title == "renamed"


def test_a_migrated_database_has_the_seed():
    assert ChatUser.objects.filter(pk__in=[ADMIN_ID, MANAGER_ID]).count() == 2
    assert seed_room().messages.count() == 1


# --- users ------------------------------------------------------------------------------------------


def test_user_ensure_creates_a_worker_user_without_events():
    mark = event_mark()

    ensured = users.user_ensure(user_id="u-Alice", name="  Alice Smith ", handle="alice-smith", role="worker")

    assert ensured.created
    user = ensured.user
    assert (user.id, user.name, user.handle, user.role, user.avatar, user.accent_hex, user.is_online) == (
        "u-Alice",
        "alice smith",
        "alice-smith",
        "worker",
        "AS",
        "#ea580c",
        True,
    )
    assert events_after(mark) == []


def test_user_ensure_reuses_an_existing_id_unchanged():
    make_user("u-alice", name="original", handle="orig")

    ensured = users.user_ensure(user_id="u-alice", name="Other", handle="other", role="worker")

    assert not ensured.created
    assert (ensured.user.name, ensured.user.handle) == ("original", "orig")


def test_user_ensure_refuses_a_taken_handle():
    with pytest.raises(Invalid) as refused:
        users.user_ensure(user_id="u-admin2", name="admin", handle="admin", role="worker")

    assert refused.value.message == 'handle "admin" already exists'


def test_user_delete_raises_domain_errors_and_emits_nothing():
    mark = event_mark()

    with pytest.raises(NotFound) as missing:
        users.user_delete(user_id="u-nobody")
    with pytest.raises(Conflict) as refused:
        users.user_delete(user_id=ADMIN_ID)

    assert (missing.value.message, refused.value.message) == ("user not found", "cannot delete current user")

    assert events_after(mark) == []


def test_user_delete_event_carries_the_users_last_state():
    user = make_user("u-bob")
    last_state = UserSerializer(user).data
    mark = event_mark()

    users.user_delete(user_id="u-bob")

    [event] = events_after(mark)
    assert (event.type, event.payload, event.stream, event.room_id) == (
        "user.deleted",
        {"type": "user.deleted", "user": last_state},
        "im",
        None,
    )


def test_memberships_survive_unrelated_deletes(team):
    make_message(Room.objects.get(pk="room-group"), sender_id="u-ops")

    users.user_delete(user_id="u-ops")

    assert list(RoomMember.objects.filter(room_id="room-group").values_list("user_id", flat=True)) == [
        ADMIN_ID,
        "u-dev",
    ]


def test_user_delete_removes_and_announces_the_rooms_left_with_fewer_than_two_members():
    bob = make_user("u-bob")
    make_room(room_id="room-alone", members=["u-bob"])
    make_room(room_id="room-pair", members=["u-bob", ADMIN_ID])
    make_room(room_id="room-three", members=["u-bob", ADMIN_ID, MANAGER_ID])
    last_state = UserSerializer(bob).data
    mark = event_mark()

    users.user_delete(user_id="u-bob")

    assert [(event.type, event.payload, event.room_id) for event in events_after(mark)] == [
        ("user.deleted", {"type": "user.deleted", "user": last_state}, None),
        ("room.deleted", {"type": "room.deleted", "room_id": "room-alone"}, "room-alone"),
        ("room.deleted", {"type": "room.deleted", "room_id": "room-pair"}, "room-pair"),
    ]
    assert sorted(
        Room.objects.filter(pk__in=["room-alone", "room-pair", "room-three"]).values_list("pk", flat=True)
    ) == ["room-three"]
