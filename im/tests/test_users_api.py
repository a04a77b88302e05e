"""User routes (http-api.md §6.7–6.8) and the user deletion cascade (§9.4)."""

from __future__ import annotations

import pytest

from agents.models import Agent, Bot
from agents.services import binding_upsert
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Message, Room, RoomMember
from im.services import seed_ensure
from im.tests.factories import (
    error_text,
    event_mark,
    events_after,
    make_agent,
    make_message,
    make_room,
    make_user,
    row_counts,
    seed_room,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

USER_KEYS = ["id", "name", "handle", "role", "avatar", "is_online", "accent_hex", "created_at"]


# --- list -------------------------------------------------------------------------------------------


def test_list_users_pins_the_user_shape(client):
    make_user("u-alice", name="alice smith", handle="alice-smith")

    users = {user["id"]: user for user in client.get("/api/v1/users").json()}

    assert all(list(user) == USER_KEYS for user in users.values())
    assert users["u-alice"] == {
        "id": "u-alice",
        "name": "alice smith",
        "handle": "alice-smith",
        "role": "worker",
        "avatar": "AS",
        "is_online": True,
        "accent_hex": "#2563eb",
        "created_at": users["u-alice"]["created_at"],
    }
    assert {key: users[ADMIN_ID][key] for key in USER_KEYS[:7]} == {
        "id": ADMIN_ID,
        "name": "admin",
        "handle": "admin",
        "role": "admin",
        "avatar": "AD",
        "is_online": True,
        "accent_hex": "#dc2626",
    }
    assert {key: users[MANAGER_ID][key] for key in ("role", "avatar", "accent_hex")} == {
        "role": "manager",
        "avatar": "MG",
        "accent_hex": "#0f766e",
    }
    assert "last_seen" not in users[ADMIN_ID]


def test_users_are_ordered_by_name_in_code_point_order_then_id(client):
    for user_id, name in [
        ("u-e-acute", "émile"),
        ("u-zed", "zed"),
        ("u-upper", "Zed"),
        ("u-b", "dup"),
        ("u-a", "dup"),
        ("u-digit", "9lives"),
        ("u-han", "张三"),
    ]:
        make_user(user_id, name=name, handle=user_id)

    ids = [user["id"] for user in client.get("/api/v1/users").json()]

    assert ids == ["u-digit", "u-upper", ADMIN_ID, "u-a", "u-b", MANAGER_ID, "u-zed", "u-e-acute", "u-han"]


# --- delete -----------------------------------------------------------------------------------------


@pytest.fixture
def cascade_world():
    """bob is in several rooms and has sent messages; carol and the admin stay."""
    make_user("u-bob")
    make_user("u-carol")
    shared = make_room(room_id="room-5-shared", members=[ADMIN_ID, "u-bob", "u-carol"])
    make_message(shared, sender_id="u-bob", content="from bob")
    make_message(shared, sender_id=ADMIN_ID, content="@bob hi", mentions=["u-bob"])
    pair = make_room(room_id="room-3-pair", members=["u-bob", ADMIN_ID])
    make_message(pair, sender_id=ADMIN_ID, content="kept until the room goes")
    make_room(room_id="room-2-direct", members=[ADMIN_ID, "u-bob"], is_direct=True)
    make_room(room_id="room-4-unrelated", members=["u-carol"])
    make_room(room_id="room-1-empty", members=[])
    untouched = make_room(room_id="room-6-untouched", members=[ADMIN_ID, "u-carol"])
    make_message(untouched, sender_id="u-bob", content="bob was never a member here")
    make_message(untouched, sender_id="u-carol", content="carol stays")


def test_delete_user_runs_the_whole_cascade(client, cascade_world):
    response = client.delete("/api/v1/users/u-bob")

    assert response.status_code == 204
    assert response.content == b""
    assert not ChatUser.objects.filter(pk="u-bob").exists()
    assert not Message.objects.filter(sender_id="u-bob").exists()
    assert not RoomMember.objects.filter(user_id="u-bob").exists()
    remaining = set(Room.objects.values_list("pk", flat=True))
    assert remaining == {"room-5-shared", "room-6-untouched", seed_room().id}
    kept = Message.objects.get(content="@bob hi")
    assert kept.mentions == ["u-bob"], "messages that only mention the user stay unedited"
    assert list(Message.objects.filter(room_id="room-6-untouched").values_list("content", flat=True)) == [
        "carol stays"
    ]
    shared = client.get("/api/v1/rooms/room-5-shared/members").json()
    assert [user["id"] for user in shared] == [ADMIN_ID, "u-carol"]


def test_delete_user_emits_user_deleted_then_room_deleted_in_id_order(client, cascade_world):
    last_state = next(user for user in client.get("/api/v1/users").json() if user["id"] == "u-bob")
    mark = event_mark()

    client.delete("/api/v1/users/u-bob")

    emitted = events_after(mark)
    assert [event.payload for event in emitted] == [
        {"type": "user.deleted", "user": last_state},
        {"type": "room.deleted", "room_id": "room-1-empty"},
        {"type": "room.deleted", "room_id": "room-2-direct"},
        {"type": "room.deleted", "room_id": "room-3-pair"},
        {"type": "room.deleted", "room_id": "room-4-unrelated"},
    ]
    assert [event.room_id for event in emitted] == [
        None,
        "room-1-empty",
        "room-2-direct",
        "room-3-pair",
        "room-4-unrelated",
    ]


def test_delete_user_frees_the_handle(client):
    make_user("u-bob", name="bob", handle="bob")

    client.delete("/api/v1/users/u-bob")

    assert make_user("u-robert", name="bob", handle="bob").handle == "bob"


def test_delete_user_leaves_agents_and_bot_bindings_alone(client):
    make_user("u-bob")
    make_agent("u-bob")
    binding_upsert(bot_id="u-bob", name="bob", role="worker", agent_id="u-bob", user_id="u-bob")

    assert client.delete("/api/v1/users/u-bob").status_code == 204
    assert Agent.objects.filter(pk="u-bob").exists()
    assert Bot.objects.filter(bot_id="u-bob").exists()


def test_deleting_the_manager_is_allowed_and_the_seed_recreates_it_with_a_new_room(client):
    old_room = seed_room()
    make_room(room_id="room-team", members=[ADMIN_ID, MANAGER_ID])
    make_user("u-carol")
    make_room(room_id="room-three", members=[ADMIN_ID, MANAGER_ID, "u-carol"])

    assert client.delete(f"/api/v1/users/{MANAGER_ID}").status_code == 204
    assert not Room.objects.filter(pk__in=[old_room.id, "room-team"]).exists()
    mark = event_mark()

    seed_ensure()

    manager = ChatUser.objects.get(pk=MANAGER_ID)
    assert (manager.name, manager.handle, manager.role) == ("manager", "manager", "manager")
    new_room = seed_room()
    assert new_room.id != old_room.id
    assert [user.id for user in new_room.members.order_by("memberships__position")] == [ADMIN_ID, MANAGER_ID]
    assert set(manager.rooms.values_list("pk", flat=True)) == {new_room.id}, "no other rooms come back"
    assert events_after(mark) == []


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("delete", "/api/v1/users/%20", 404, "404 page not found"),
        ("get", "/api/v1/users/%20", 404, "404 page not found"),
        ("get", "/api/v1/users/u-manager", 405, "method not allowed"),
        ("post", "/api/v1/users/u-nobody", 405, "method not allowed"),
        ("delete", "/api/v1/users/u-nobody", 404, "user not found"),
        ("delete", "/api/v1/users/u-admin", 409, "cannot delete current user"),
        ("delete", "/api/v1/users/%20u-admin%20", 409, "cannot delete current user"),
    ],
)
def test_delete_user_checks_in_order(client, method, path, status, text):
    before = row_counts()

    response = getattr(client, method)(path)

    assert (response.status_code, error_text(response)) == (status, text)
    assert row_counts() == before
