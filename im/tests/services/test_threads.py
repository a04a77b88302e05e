"""im/services/threads.py: the hidden context snapshot, the root excerpt, the rebuilds, and the exact thread
events of every service that emits one (threads-attachments.md §1.4–§1.9)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import Invalid, NotFound
from im import selectors
from im.identity import ADMIN_ID
from im.models import Message, Room, Thread
from im.serializers import MessageSerializer
from im.services import messages, rooms, threads, users
from im.tests.factories import event_mark, events_after, make_message, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

VIEW_KEYS = ["room_id", "root", "context", "replies", "summary"]


@pytest.mark.parametrize(
    ("content", "excerpt"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ('```json {"a": 1}```', '{"a": 1}'),
        ("```  \t\r\nline one\r\nline two\n```", "line one line two"),
        ("```hello world```", "hello world"),
        ("```JSON {}```", "{}"),
        ("```json```", "json"),
        ("  plain   text\n\twith  breaks  ", "plain text with breaks"),
        ("text ```", "text ```"),
        ("é" * 200, "é" * 160),
    ],
)
def test_root_excerpt(content, excerpt):
    assert threads.root_excerpt(content) == excerpt


def _room() -> Room:
    make_user("u-dev")
    room = Room.objects.create(id="room-t", title="t")
    room.memberships.create(user_id=ADMIN_ID, position=1)
    room.memberships.create(user_id="u-dev", position=2)
    return room


def test_snapshot_skips_replies_and_counts_the_window():
    room = _room()
    first = make_message(room, content="first")
    root = make_message(room, content="root")
    reply = make_message(room, content="reply")
    Message.objects.filter(pk=reply.pk).update(thread_root_id=first.message_id)
    event = make_message(room, kind="event", content="joined", event={"key": "room_members_added"})
    context, summary = threads.context_snapshot(root)
    assert [message["id"] for message in context] == [first.message_id, root.message_id, event.message_id]
    assert context[0] == MessageSerializer(first).data
    assert summary == {"root_excerpt": "root", "message_count": 3, "before_count": 1, "after_count": 1}


def test_snapshot_cap_drops_the_larger_side_first_and_keeps_the_root():
    room = _room()
    big = "x" * 20_000
    before = [make_message(room, content=big) for _ in range(2)]
    root = make_message(room, content=big + big)
    make_message(room, content=big)
    context, summary = threads.context_snapshot(root)
    assert [message["id"] for message in context] == [root.message_id]
    assert summary["message_count"] == 1
    assert (summary["before_count"], summary["after_count"]) == (0, 0)
    assert before  # both older messages existed and were dropped


def test_message_send_reply_events_and_thread_state():
    room = _room()
    root = make_message(room, content="root")
    mark = event_mark()
    sent = messages.message_send(
        room_id=room.id,
        sender_id="u-dev",
        content="reply",
        relates_to={"rel_type": "m.thread", "event_id": root.message_id},
        metadata={"k": "v"},
    )
    created, updated = events_after(mark)
    assert created.type == "message.created"
    assert created.payload["message"]["relates_to"] == {"rel_type": "m.thread", "event_id": root.message_id}
    assert created.payload["message"]["metadata"] == {"k": "v"}
    assert sorted(created.recipients.values_list("recipient_id", flat=True)) == []
    assert updated.type == "thread.updated"
    assert list(updated.payload) == ["type", "room_id", "thread"]
    view = updated.payload["thread"]
    assert list(view) == VIEW_KEYS
    assert view["root"]["thread"] == view["summary"]
    assert view["summary"]["participants"] == [
        {"id": ADMIN_ID, "name": "admin"},
        {"id": "u-dev", "name": "dev"},
    ]
    assert view["replies"] == [MessageSerializer(sent.message).data]
    assert Thread.objects.get(room=room).root_message_id == root.message_id


def test_thread_start_emits_thread_created_once():
    room = _room()
    root = make_message(room, content="root")
    mark = event_mark()
    started = threads.thread_start(room_id=room.id, root_message_id=root.message_id)
    [event] = events_after(mark)
    assert started.created is True
    assert event.type == "thread.created"
    assert event.payload == {"type": "thread.created", "room_id": room.id, "thread": started.view}
    again = threads.thread_start(room_id=room.id, root_message_id=root.message_id)
    assert (again.created, again.view) == (False, started.view)
    assert len(events_after(mark)) == 1


def test_thread_start_errors():
    room = _room()
    with pytest.raises(Invalid, match="root_message_id is required"):
        threads.thread_start(room_id=room.id, root_message_id=" ")
    with pytest.raises(NotFound, match="room not found"):
        threads.thread_start(room_id="room-nope", root_message_id="msg-1")
    with pytest.raises(NotFound, match="root message not found"):
        threads.thread_start(room_id=room.id, root_message_id="m" * 500)


def test_message_replace_of_a_reply_rebuilds_and_emits_thread_updated():
    room = _room()
    root = make_message(room, content="root")
    reply = messages.message_send(
        room_id=room.id,
        sender_id="u-dev",
        content="reply",
        relates_to={"rel_type": "m.thread", "event_id": root.message_id},
    ).message
    thread = Thread.objects.get(room=room)
    newer = make_message(room, content="newer")
    mark = event_mark()
    messages.message_replace(message=reply, content="edited", thread_root=root)
    created, updated = events_after(mark)
    assert (created.type, updated.type) == ("message.created", "thread.updated")
    assert updated.payload["thread"]["replies"][0]["content"] == "edited"
    rebuilt = Thread.objects.get(pk=thread.pk)
    assert [message["id"] for message in rebuilt.context] == [root.message_id, newer.message_id]
    assert rebuilt.created_at == thread.created_at


def test_user_delete_removes_threads_of_their_roots_and_rebuilds_the_rest_silently():
    room = _room()
    dev_root = make_message(room, sender_id="u-dev", content="dev root")
    admin_root = make_message(room, content="admin root")
    threads.thread_start(room_id=room.id, root_message_id=dev_root.message_id)
    threads.thread_start(room_id=room.id, root_message_id=admin_root.message_id)
    make_user("u-ops")
    room.memberships.create(user_id="u-ops", position=3)
    mark = event_mark()
    users.user_delete(user_id="u-dev")
    assert [event.type for event in events_after(mark)] == ["user.deleted"]
    [remaining] = Thread.objects.all()
    assert remaining.root_message_id == admin_root.message_id
    assert remaining.summary["before_count"] == 0


def test_room_delete_deletes_its_threads():
    room = _room()
    root = make_message(room, content="root")
    threads.thread_start(room_id=room.id, root_message_id=root.message_id)
    rooms.room_delete(room_id=room.id)
    assert not Thread.objects.exists()


def test_room_list_reads_thread_summaries_in_a_constant_number_of_queries():
    room = _room()

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            selectors.room_list()
        return len(captured)

    first_root = make_message(room, content="root 0")
    messages.message_send(
        room_id=room.id,
        sender_id="u-dev",
        content="r",
        relates_to={"rel_type": "m.thread", "event_id": first_root.message_id},
    )
    one = count_queries()
    for index in range(1, 6):
        root = make_message(room, content=f"root {index}")
        messages.message_send(
            room_id=room.id,
            sender_id=ADMIN_ID,
            content="r",
            relates_to={"rel_type": "m.thread", "event_id": root.message_id},
        )
    assert count_queries() == one
