"""The write side of the durable event log: `event_append` and the payload builders of every event type."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connection, transaction

from im.attachments.wire import AttachmentSerializer
from im.models import ChatUser, Event, EventRecipient, EventStream, Message, Room, Thread
from im.realtime.broker import broker
from im.serializers import MessageSerializer, RoomSerializer, UserSerializer

# Any fixed 64-bit key: one lock spans all streams because one seq cursor spans all streams.
EVENT_LOCK_KEY = 0x637367636C6177  # "csgclaw"

MESSAGE_CREATED = "message.created"
ROOM_CREATED = "room.created"
ROOM_MEMBERS_ADDED = "room.members_added"
ROOM_DELETED = "room.deleted"
USER_CREATED = "user.created"
USER_DELETED = "user.deleted"
AGENT_UPDATED = "agent.updated"
THREAD_CREATED = "thread.created"
THREAD_UPDATED = "thread.updated"
ROOM_ATTACHMENT_DELETED = "room.attachment_deleted"

PARTICIPANT_CHANNEL = "csgclaw"


def event_append(
    *,
    type: str,
    payload: dict[str, Any],
    stream: str = EventStream.IM,
    room_id: str | None = None,
    message_id: str | None = None,
    bot_payload: dict[str, Any] | None = None,
    participant_payload: dict[str, Any] | None = None,
    recipients: Iterable[tuple[str, bool]] = (),
) -> Event:
    """Append one event in the caller's transaction; streams are rung only after it commits.

    `recipients` are `(recipient_id, mentioned)` pairs for bot and Feishu delivery.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("event_append must run inside the service's transaction")
    if connection.vendor == "postgresql":
        # Serialise event writers so commit order equals seq order; a reader at seq N must never
        # later see a smaller seq commit. Transaction-level locks are re-entrant and end at commit.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVENT_LOCK_KEY])
    event = Event.objects.create(
        stream=stream,
        type=type,
        room_id=room_id,
        message_id=message_id,
        payload={"type": type, **payload},
        bot_payload=bot_payload,
        participant_payload=participant_payload,
    )
    EventRecipient.objects.bulk_create(
        EventRecipient(event=event, recipient_id=recipient_id, mentioned=mentioned)
        for recipient_id, mentioned in recipients
    )
    transaction.on_commit(partial(broker.ring, event.seq))
    return event


def unix_millis(moment: datetime) -> int:
    """Integer arithmetic, so no float rounding can move a timestamp across a millisecond."""
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def message_created_payload(message: Message, sender: ChatUser) -> dict[str, Any]:
    return {
        "room_id": message.room_id,
        "message": MessageSerializer(message).data,
        "sender": UserSerializer(sender).data,
    }


def relayed_message_payload(room_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """`message.created` of a message from outside the IM (events.md §4): no sender object, no IM row."""
    return {"room_id": room_id, "message": message}


def _sender_brief(sender: ChatUser) -> dict[str, str]:
    """`{"id", "username", "display_name"}` of bot and participant frames; empty names are omitted."""
    sender_data = {"id": sender.id}
    if sender.handle:
        sender_data["username"] = sender.handle
    if sender.name:
        sender_data["display_name"] = sender.name
    return sender_data


def bot_message_payload(message: Message, sender: ChatUser, *, is_direct: bool) -> dict[str, Any]:
    """The bot frame (events.md §3.3) without `mentions`, which depends on the receiving bot."""
    return {
        "message_id": message.message_id,
        "room_id": message.room_id,
        "chat_id": message.room_id,
        "chat_type": "direct" if is_direct else "group",
        "sender": _sender_brief(sender),
        "text": message.content,
        "timestamp": str(unix_millis(message.created_at)),
    }


def participant_message_payload(
    message: Message, sender: ChatUser, *, is_direct: bool, thread: Thread | None = None
) -> dict[str, Any]:
    """The participant frame (participants.md §2.4) without the keys that depend on the recipient.

    A reply carries its `thread` state as it is now: `thread_root_id`, `thread_context` and
    `context.topic_id`.
    """
    chat_type = "direct" if is_direct else "group"
    root_id = message.thread_root_id or ""
    frame = {
        "message_id": message.message_id,
        "room_id": message.room_id,
        "channel": PARTICIPANT_CHANNEL,
        "chat_id": message.room_id,
        "chat_type": chat_type,
        "sender": _sender_brief(sender),
        "sender_id": sender.id,
        "text": message.content,
    }
    # With download URLs; each recipient's stream adds its workspace copies (participants.md §2.5).
    attachments = AttachmentSerializer(message.attachments.all(), many=True).data
    if attachments:
        frame["attachments"] = attachments
    frame["timestamp"] = str(unix_millis(message.created_at))
    context = {"channel": PARTICIPANT_CHANNEL, "chat_id": message.room_id, "chat_type": chat_type}
    if root_id:
        frame["thread_root_id"] = root_id
        thread_context: dict[str, Any] = {"root_message_id": root_id}
        if thread is not None and thread.context:
            thread_context["context"] = thread.context
        thread_context["summary"] = thread.summary if thread is not None else {}
        frame["thread_context"] = thread_context
        context["topic_id"] = root_id
    context.update(
        sender_id=sender.id,
        message_id=message.message_id,
        raw={"room_id": message.room_id, "thread_root_id": root_id},
    )
    frame["context"] = context
    return frame


def message_recipients(
    *, member_ids: Iterable[str], sender_id: str, mentions: list[str], is_direct: bool
) -> list[tuple[str, bool]]:
    """Members other than the sender; in a group room only the mentioned ones (events.md §3.2)."""
    mentioned = set(mentions)
    return [
        (member_id, member_id in mentioned)
        for member_id in member_ids
        if member_id != sender_id and (is_direct or member_id in mentioned)
    ]


def room_payload(room: Room) -> dict[str, Any]:
    return {"room_id": room.id, "room": RoomSerializer(room).data}


def thread_payload(room_id: str, view: dict[str, Any]) -> dict[str, Any]:
    """`thread.created` / `thread.updated` (threads-attachments.md §1.9): the ThreadView with context."""
    return {"room_id": room_id, "thread": view}


def room_deleted_payload(room_id: str) -> dict[str, Any]:
    return {"room_id": room_id}


def user_payload(user: ChatUser) -> dict[str, Any]:
    return {"user": UserSerializer(user).data}
