"""im/services.py: the first-run seed, and the exact events each write emits (events.md §2, §5.1–5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from core.errors import Conflict, Invalid, NotFound
from im import events, selectors, services
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser, Event, EventRecipient, Message, Room, RoomMember
from im.realtime.broker import broker
from im.serializers import RoomSerializer, UserSerializer
from im.tests.factories import (
    event_mark,
    event_types_after,
    events_after,
    make_message,
    make_room,
    make_user,
    row_counts,
    seed_room,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _presented(room_id: str) -> dict:
    return RoomSerializer(selectors.room_get(room_id, presentable=True)).data


@pytest.fixture
def rings(monkeypatch) -> list[int]:
    """Every doorbell ring, by seq."""
    rung: list[int] = []
    monkeypatch.setattr(broker, "ring", lambda seq=0: rung.append(seq))
    return rung


# --- first-run seed ---------------------------------------------------------------------------------


def _wipe_im() -> None:
    Room.objects.all().delete()
    ChatUser.objects.all().delete()


def test_seed_writes_exactly_the_first_run_state_and_no_events():
    _wipe_im()
    mark = event_mark()

    services.seed_ensure()

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
    assert _presented(room.id)["title"] == "manager"
    assert events_after(mark) == []


def test_seed_is_idempotent():
    before = row_counts()
    room_id = seed_room().id

    services.seed_ensure()
    services.seed_ensure()

    assert row_counts() == before
    assert seed_room().id == room_id


def test_seed_forces_name_and_role_back_on_the_user_with_the_handle():
    ChatUser.objects.filter(pk=MANAGER_ID).update(name="boss", role="worker")
    ChatUser.objects.filter(pk=ADMIN_ID).update(name="root", role="manager")
    mark = event_mark()

    services.seed_ensure()

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

    services.seed_ensure()

    recreated = seed_room()
    assert recreated.id not in {old.id, "room-group-pair", "room-direct-three"}
    assert recreated.is_direct


def test_seed_keeps_an_existing_direct_admin_manager_room_whatever_its_title():
    room = seed_room()
    Room.objects.filter(pk=room.pk).update(title="renamed")

    services.seed_ensure()

    assert Room.objects.filter(is_direct=True).count() == 1
    assert seed_room().title == "renamed"


def test_a_migrated_database_has_the_seed():
    assert ChatUser.objects.filter(pk__in=[ADMIN_ID, MANAGER_ID]).count() == 2
    assert seed_room().messages.count() == 1


# --- users ------------------------------------------------------------------------------------------


def test_user_ensure_creates_a_worker_user_without_events():
    mark = event_mark()

    ensured = services.user_ensure(
        user_id="u-Alice", name="  Alice Smith ", handle="alice-smith", role="worker"
    )

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

    ensured = services.user_ensure(user_id="u-alice", name="Other", handle="other", role="worker")

    assert not ensured.created
    assert (ensured.user.name, ensured.user.handle) == ("original", "orig")


def test_user_ensure_refuses_a_taken_handle():
    with pytest.raises(Invalid) as refused:
        services.user_ensure(user_id="u-admin2", name="admin", handle="admin", role="worker")

    assert refused.value.message == 'handle "admin" already exists'


def test_user_delete_raises_domain_errors_and_emits_nothing():
    mark = event_mark()

    with pytest.raises(NotFound) as missing:
        services.user_delete(user_id="u-nobody")
    with pytest.raises(Conflict) as refused:
        services.user_delete(user_id=ADMIN_ID)

    assert (missing.value.message, refused.value.message) == ("user not found", "cannot delete current user")

    assert events_after(mark) == []


def test_user_delete_event_carries_the_users_last_state():
    user = make_user("u-bob")
    last_state = UserSerializer(user).data
    mark = event_mark()

    services.user_delete(user_id="u-bob")

    [event] = events_after(mark)
    assert (event.type, event.payload, event.stream, event.room_id) == (
        "user.deleted",
        {"type": "user.deleted", "user": last_state},
        "im",
        None,
    )


# --- rooms ------------------------------------------------------------------------------------------


def test_room_create_emits_room_created_with_the_presented_room():
    make_user("u-bob")
    mark = event_mark()

    room = services.room_create(creator_id=ADMIN_ID, title="launch", member_ids=["u-bob"], locale="en")

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

    room, created = services.direct_room_ensure(
        user=ChatUser.objects.get(pk="u-bob"), title="bob", first_sender_id="u-bob"
    )
    services.emit_room_created(room)

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

    room, created = services.direct_room_ensure(
        user=ChatUser.objects.get(pk="u-bob"), title="bob", first_sender_id="u-bob"
    )

    assert (room.id, created) == (existing.id, False)
    assert events_after(mark) == []


def test_room_invite_emits_members_added_with_the_presented_room():
    make_user("u-bob")
    group = make_room(members=[ADMIN_ID])
    mark = event_mark()

    services.room_invite(room_id=group.id, inviter_id=ADMIN_ID, user_ids=["u-bob"], locale="zh")

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

    services.room_add_agent(room_id=f" {group.id} ", agent_user_id="u-bot", inviter_id="  ")

    assert event_types_after(mark) == ["room.members_added"]
    assert Message.objects.filter(room=group).last().event["actor_id"] == ADMIN_ID


def test_room_delete_emits_room_deleted_with_only_the_id():
    room = make_room()
    mark = event_mark()

    services.room_delete(room_id=room.id)

    [event] = events_after(mark)
    assert (event.type, event.payload, event.room_id) == (
        "room.deleted",
        {"type": "room.deleted", "room_id": room.id},
        room.id,
    )


# --- messages ---------------------------------------------------------------------------------------


@pytest.fixture
def team():
    """dev and ops; a direct room admin↔dev and a group room of admin, dev and ops."""
    make_user("u-dev")
    make_user("u-ops")
    make_user("u-zed")
    direct = make_room(room_id="room-direct", members=[ADMIN_ID, "u-dev"], is_direct=True)
    group = make_room(room_id="room-group", members=[ADMIN_ID, "u-dev", "u-ops"])
    return direct, group


def _recipients(event: Event) -> list[tuple[str, bool]]:
    return sorted(event.recipients.values_list("recipient_id", "mentioned"))


def test_message_send_emits_message_created_with_message_and_full_sender(team):
    mark = event_mark()

    sent = services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="@dev build it")

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
    sent = services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="@dev go")

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

    sent = services.message_send(room_id="room-direct", sender_id="u-anon", content="hi")

    bot_payload = Event.objects.get(message_id=sent.message.message_id).bot_payload
    assert bot_payload["chat_type"] == "direct"
    assert bot_payload["sender"] == {"id": "u-anon"}


def test_bot_timestamps_are_truncated_unix_milliseconds():
    assert events.unix_millis(datetime(2025, 4, 26, 6, 46, 40, 123999, tzinfo=UTC)) == 1745650000123
    assert events.unix_millis(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0


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
    sent = services.message_send(room_id=room_id, sender_id=sender_id, content=content)

    assert _recipients(Event.objects.get(message_id=sent.message.message_id)) == recipients


def test_a_two_member_group_room_still_needs_a_mention(team):
    make_room(room_id="room-pair", members=[ADMIN_ID, "u-dev"])

    sent = services.message_send(room_id="room-pair", sender_id=ADMIN_ID, content="hello")

    assert _recipients(Event.objects.get(message_id=sent.message.message_id)) == []


def test_a_client_msg_id_replay_emits_nothing(team):
    first = services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")
    mark = event_mark()

    again = services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")

    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert events_after(mark) == []


def test_a_client_msg_id_retry_that_loses_the_insert_race_returns_the_winner(team, monkeypatch):
    winner = services.message_send(
        room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1"
    )
    lookups = iter([None])  # the retry's pre-insert lookup runs before the winner committed
    find = selectors.message_find_by_client_id
    monkeypatch.setattr(
        selectors, "message_find_by_client_id", lambda **kwargs: next(lookups, None) or find(**kwargs)
    )
    mark = event_mark()

    retry = services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi", client_msg_id="c-1")

    assert (retry.created, retry.message.pk) == (False, winner.message.pk)
    assert Message.objects.filter(client_msg_id="c-1").count() == 1
    assert events_after(mark) == []


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
        ("message_send", {"room_id": "room-nope", "sender_id": ADMIN_ID, "content": "hi"}, "room not found"),
        (
            "message_send",
            {"room_id": "room-group", "sender_id": ADMIN_ID, "content": "hi", "mention_id": "u-x"},
            "mentioned user not found",
        ),
        ("room_delete", {"room_id": "room-nope"}, "room not found"),
    ],
)
def test_rejected_writes_emit_nothing_and_write_nothing(team, rings, service, kwargs, error):
    before = row_counts()

    with pytest.raises((Invalid, NotFound)) as rejected:
        getattr(services, service)(**kwargs)

    assert rejected.value.message == error
    assert row_counts() == before
    assert rings == []


# --- commit and the doorbell ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_event_append_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        events.event_append(type=events.ROOM_DELETED, payload={"room_id": "room-x"})


def test_the_broker_is_rung_only_after_commit(team, rings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi")
        assert rings == []

    for callback in callbacks:
        callback()

    assert rings, "the doorbell rings once the transaction commits"


def test_a_transaction_with_several_events_rings_only_after_commit(rings, django_capture_on_commit_callbacks):
    make_user("u-bob")
    make_room(room_id="room-a", members=["u-bob"])
    make_room(room_id="room-b", members=["u-bob", ADMIN_ID])
    mark = event_mark()

    with django_capture_on_commit_callbacks(execute=True):
        services.user_delete(user_id="u-bob")
        assert rings == []

    assert rings, "the doorbell rings once the transaction commits"
    assert event_types_after(mark) == ["user.deleted", "room.deleted", "room.deleted"]


def test_a_rolled_back_write_leaves_no_event_and_rings_nothing(
    team, rings, django_capture_on_commit_callbacks
):
    before = row_counts()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError, match="boom"),
        transaction.atomic(),
    ):
        services.message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi")
        services.room_create(creator_id=ADMIN_ID, title="t")
        raise RuntimeError("boom")

    assert callbacks == []
    assert rings == []
    assert row_counts() == before


@pytest.mark.django_db(transaction=True)
def test_at_ring_time_the_event_is_committed_and_visible(monkeypatch):
    seen: list[tuple[bool, int]] = []

    def ring(seq: int = 0) -> None:
        seen.append((connection.in_atomic_block, Event.objects.filter(type="message.created").count()))

    monkeypatch.setattr(broker, "ring", ring)

    services.message_send(room_id=seed_room().id, sender_id=ADMIN_ID, content="hi")

    assert seen
    assert set(seen) == {(False, 1)}, "rung outside the transaction, with the new event readable"


def test_the_event_log_keeps_payloads_as_written(team):
    sent = services.message_send(room_id="room-group", sender_id="u-dev", content="hi")
    ChatUser.objects.filter(pk="u-dev").update(name="renamed")

    event = Event.objects.get(message_id=sent.message.message_id)

    assert event.payload["sender"]["name"] == "dev", "payloads are never re-rendered on read"


def test_event_recipients_are_unique_per_event(team):
    sent = services.message_send(
        room_id="room-group", sender_id=ADMIN_ID, content='@dev @dev <at user_id="u-dev">d</at>'
    )

    assert EventRecipient.objects.filter(event__message_id=sent.message.message_id).count() == 1
    assert sent.message.mentions == ["u-dev"]


def test_memberships_survive_unrelated_deletes(team):
    make_message(Room.objects.get(pk="room-group"), sender_id="u-ops")

    services.user_delete(user_id="u-ops")

    assert list(RoomMember.objects.filter(room_id="room-group").values_list("user_id", flat=True)) == [
        ADMIN_ID,
        "u-dev",
    ]
