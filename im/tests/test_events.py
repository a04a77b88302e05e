"""im/events.py: events are written in the service's transaction, and streams are rung only after commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from im import events
from im.identity import ADMIN_ID
from im.models import ChatUser, Event, EventRecipient
from im.realtime.broker import broker
from im.services.messages import message_send
from im.services.rooms import room_create
from im.services.users import user_delete
from im.tests.factories import event_mark, event_types_after, make_room, make_user, row_counts, seed_room

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


def test_bot_timestamps_are_truncated_unix_milliseconds():
    assert events.unix_millis(datetime(2025, 4, 26, 6, 46, 40, 123999, tzinfo=UTC)) == 1745650000123
    assert events.unix_millis(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0


@pytest.mark.django_db(transaction=True)
def test_event_append_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        events.event_append(type=events.ROOM_DELETED, payload={"room_id": "room-x"})


def test_the_broker_is_rung_only_after_commit(team, rings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi")
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
        user_delete(user_id="u-bob")
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
        message_send(room_id="room-group", sender_id=ADMIN_ID, content="hi")
        room_create(creator_id=ADMIN_ID, title="t")
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

    message_send(room_id=seed_room().id, sender_id=ADMIN_ID, content="hi")

    assert seen
    assert set(seen) == {(False, 1)}, "rung outside the transaction, with the new event readable"


def test_the_event_log_keeps_payloads_as_written(team):
    sent = message_send(room_id="room-group", sender_id="u-dev", content="hi")
    ChatUser.objects.filter(pk="u-dev").update(name="renamed")

    event = Event.objects.get(message_id=sent.message.message_id)

    assert event.payload["sender"]["name"] == "dev", "payloads are never re-rendered on read"


def test_event_recipients_are_unique_per_event(team):
    sent = message_send(
        room_id="room-group", sender_id=ADMIN_ID, content='@dev @dev <at user_id="u-dev">d</at>'
    )

    assert EventRecipient.objects.filter(event__message_id=sent.message.message_id).count() == 1
    assert sent.message.mentions == ["u-dev"]
