"""GET /api/v1/im/bootstrap and its alias (http-api.md §6.1), and the wire format of times (§1.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction

from im import events, selectors
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, EventLogState, Room
from im.tests.factories import event_mark, make_message, make_room, make_user, seed_room

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

BOOTSTRAP_PATHS = ("/api/v1/im/bootstrap", "/api/v1/bootstrap")


@pytest.mark.parametrize("path", BOOTSTRAP_PATHS)
def test_bootstrap_of_a_fresh_database_is_the_first_run_seed(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["current_user_id", "users", "rooms", "last_event_id"]
    assert body["current_user_id"] == ADMIN_ID
    assert [user["id"] for user in body["users"]] == [ADMIN_ID, MANAGER_ID]
    [room] = body["rooms"]
    assert room["id"] == seed_room().id
    assert room["title"] == "manager"
    assert room["subtitle"] == "2 members"
    assert room["description"] == "Bootstrap room for admin and manager."
    assert room["members"] == room["participants"] == [ADMIN_ID, MANAGER_ID]
    assert room["is_direct"] is True
    [message] = room["messages"]
    assert list(message) == ["id", "sender_id", "kind", "content", "created_at", "mentions"]
    assert (message["sender_id"], message["kind"], message["content"], message["mentions"]) == (
        MANAGER_ID,
        "message",
        "Bootstrap room created for admin and manager.",
        [],
    )
    assert body["last_event_id"] == 0


def test_bootstrap_lists_users_and_rooms_in_their_orders_with_full_history(client):
    make_user("u-zoe")
    make_user("u-bob")
    quiet = make_room(room_id="room-quiet", members=[ADMIN_ID])
    busy = make_room(room_id="room-busy", members=[ADMIN_ID, "u-bob"])
    first = make_message(busy, content="one")
    second = make_message(busy, sender_id="u-bob", content="two")

    body = client.get("/api/v1/bootstrap").json()

    assert [user["id"] for user in body["users"]] == [ADMIN_ID, "u-bob", MANAGER_ID, "u-zoe"]
    assert [room["id"] for room in body["rooms"]] == ["room-busy", seed_room().id, quiet.id]
    assert [message["id"] for message in body["rooms"][0]["messages"]] == [
        first.message_id,
        second.message_id,
    ]
    assert body["rooms"][2]["messages"] == []
    assert "invite_draft_user_ids" not in body
    assert "conversations" not in body


def test_bootstrap_of_an_empty_database_has_empty_arrays(client):
    Room.objects.all().delete()
    ChatUser.objects.all().delete()

    body = client.get("/api/v1/im/bootstrap").json()

    assert (body["users"], body["rooms"]) == ([], [])


def test_last_event_id_is_the_newest_seq(client):
    client.post("/api/v1/rooms", data='{"title": "t", "creator_id": "u-admin"}', content_type="text/plain")

    assert client.get("/api/v1/im/bootstrap").json()["last_event_id"] == event_mark() > 0


def test_last_event_id_counts_pruned_events(client):
    EventLogState.objects.create(pruned_through=5000)

    assert client.get("/api/v1/im/bootstrap").json()["last_event_id"] == 5000


def test_last_event_id_is_read_before_the_state(client, monkeypatch):
    mark = event_mark()
    read_users = selectors.user_list

    def user_list_with_a_concurrent_write() -> list:
        with transaction.atomic():
            events.event_append(type=events.ROOM_DELETED, payload={"room_id": "room-x"})
        return read_users()

    monkeypatch.setattr(selectors, "user_list", user_list_with_a_concurrent_write)

    body = client.get("/api/v1/im/bootstrap").json()

    assert body["last_event_id"] == mark
    assert event_mark() > mark


# --- time format ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_at", "wire"),
    [
        (datetime(2026, 4, 24, 10, 15, 1, 848093, tzinfo=UTC), "2026-04-24T10:15:01.848093Z"),
        (datetime(2026, 4, 24, 10, 15, 1, 500000, tzinfo=UTC), "2026-04-24T10:15:01.5Z"),
        (datetime(2026, 4, 24, 10, 15, 1, 120, tzinfo=UTC), "2026-04-24T10:15:01.00012Z"),
        (datetime(2026, 4, 24, 10, 0, 0, tzinfo=UTC), "2026-04-24T10:00:00Z"),
        (
            datetime(2026, 4, 24, 18, 0, 0, 1, tzinfo=timezone(timedelta(hours=8))),
            "2026-04-24T10:00:00.000001Z",
        ),
    ],
)
def test_times_are_rfc3339_utc_with_trimmed_microseconds(client, created_at, wire):
    make_user("u-timed", created_at=created_at)
    room = make_room(room_id="room-timed", members=[ADMIN_ID])
    make_message(room, created_at=created_at)

    body = client.get("/api/v1/im/bootstrap").json()

    assert next(user for user in body["users"] if user["id"] == "u-timed")["created_at"] == wire
    assert (
        next(room for room in body["rooms"] if room["id"] == "room-timed")["messages"][0]["created_at"]
        == wire
    )
