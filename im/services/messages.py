"""Writes of messages: sending, posting on behalf of other apps, editing in place, and relayed messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from core.errors import Invalid
from im import events, selectors
from im.aliases import rewrite_alias_tags
from im.attachments.storage import IncomingFile
from im.identity import new_message_id
from im.mentions import at_tag, resolve_mentions
from im.models import ChatUser, Event, Message, MessageKind, Room
from im.services.attachments import (
    ValidatedFile,
    attachments_store,
    attachments_validate,
    message_attachments_clear,
)
from im.services.common import check_length
from im.services.threads import relation_root, thread_state_ensure, thread_updated_emit, threads_rebuild

CLIENT_MSG_ID_MAX = 128


@dataclass(frozen=True)
class SentMessage:
    message: Message
    created: bool


def message_store(
    *,
    room: Room,
    sender_id: str,
    content: str,
    kind: str = MessageKind.MESSAGE,
    event: dict | None = None,
    mentions: list[str] | None = None,
    client_msg_id: str | None = None,
    message_id: str = "",
    metadata: dict | None = None,
    thread_root_id: str | None = None,
) -> Message:
    """The message row alone, in the caller's transaction; the caller emits whatever event announces it."""
    return Message.objects.create(
        message_id=message_id or new_message_id(),
        room=room,
        sender_id=sender_id,
        kind=kind,
        content=content,
        event=event,
        mentions=mentions or [],
        client_msg_id=client_msg_id,
        metadata=metadata or None,
        thread_root_id=thread_root_id,
    )


def _mentions_of(content: str) -> list[str]:
    return resolve_mentions(
        content, existing_ids=selectors.existing_user_ids, ids_by_handle=selectors.user_ids_by_handle
    )


@transaction.atomic
def message_send(
    *,
    room_id: str,
    sender_id: str,
    content: str,
    mention_id: str = "",
    client_msg_id: str = "",
    relates_to: dict[str, str] | None = None,
    metadata: dict | None = None,
    files: Sequence[IncomingFile] = (),
) -> SentMessage:
    """Post a message (http-api.md §6.10); a repeated `client_msg_id` returns the stored message.

    `relates_to` makes it a thread reply (threads-attachments.md §1.4). `files` are its attachments
    (§2.5), validated after every other check; with at least one file the content may be empty.
    """
    room_id = room_id.strip()
    content = content.strip()
    mention_id = mention_id.strip()
    client_msg_id = client_msg_id.strip()
    if not room_id:
        raise Invalid("room_id is required")
    if sender_id == "":
        raise Invalid("sender_id is required")
    if not content and not files:
        raise Invalid("content is required")
    sender = selectors.user_find(sender_id)
    if sender is None:
        raise Invalid("sender not found")
    mentioned = selectors.user_find(mention_id) if mention_id else None
    if mention_id and mentioned is None:
        raise Invalid("mentioned user not found")
    room = selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    thread_root = relation_root(room=room, relates_to=relates_to)
    check_length("client_msg_id", client_msg_id, CLIENT_MSG_ID_MAX)
    validated = attachments_validate(list(files))
    if client_msg_id:
        existing = selectors.message_find_by_client_id(sender_id=sender.id, client_msg_id=client_msg_id)
        if existing is not None:
            return SentMessage(existing, created=False)
    content = rewrite_alias_tags(content)
    if mentioned is not None and mentioned.id not in _mentions_of(content):
        content = f"{at_tag(mentioned.id, mentioned.name)} {content}"
    try:
        with transaction.atomic():
            message = message_post(
                room=room,
                sender=sender,
                content=content,
                client_msg_id=client_msg_id,
                metadata=metadata,
                thread_root=thread_root,
                files=validated,
            )
    except IntegrityError:
        # A concurrent retry with the same client_msg_id won the insert.
        existing = selectors.message_find_by_client_id(sender_id=sender.id, client_msg_id=client_msg_id)
        if client_msg_id and existing is not None:
            return SentMessage(existing, created=False)
        raise
    return SentMessage(message, created=True)


def message_post(
    *,
    room: Room,
    sender: ChatUser,
    content: str,
    client_msg_id: str = "",
    message_id: str = "",
    metadata: dict | None = None,
    thread_root: Message | None = None,
    files: Sequence[ValidatedFile] = (),
) -> Message:
    """Store a message (and its validated `files`) and emit `message.created` with its bot recipients
    (caller's transaction).

    Alias mention tags are rewritten to user ids first (participants.md §1.4), so every create path
    stores and streams `u-…` ids. A reply to `thread_root` creates the thread state if missing and is
    followed by `thread.updated` (threads-attachments.md §1.4).
    """
    content = rewrite_alias_tags(content)
    mentions = _mentions_of(content)
    message = message_store(
        room=room,
        sender_id=sender.id,
        content=content,
        mentions=mentions,
        client_msg_id=client_msg_id or None,
        message_id=message_id,
        metadata=metadata,
        thread_root_id=thread_root.message_id if thread_root else None,
    )
    if files:
        attachments_store(message=message, files=list(files))
    thread = thread_state_ensure(room=room, root=thread_root)[0] if thread_root else None
    recipients = events.message_recipients(
        member_ids=selectors.room_member_ids(room),
        sender_id=sender.id,
        mentions=mentions,
        is_direct=room.is_direct,
    )
    events.event_append(
        type=events.MESSAGE_CREATED,
        payload=events.message_created_payload(message, sender),
        room_id=room.id,
        message_id=message.message_id,
        bot_payload=events.bot_message_payload(message, sender, is_direct=room.is_direct),
        participant_payload=events.participant_message_payload(
            message, sender, is_direct=room.is_direct, thread=thread
        ),
        recipients=recipients,
    )
    if thread is not None:
        thread_updated_emit(thread)
    return message


def message_replace(
    *,
    message: Message,
    content: str,
    metadata: dict | None = None,
    thread_root: Message | None = None,
    files: Sequence[ValidatedFile] = (),
) -> Message:
    """Edit a message in place (participants.md §3.6) in the caller's transaction.

    Content, mentions, metadata and the thread it replies to change; id, `created_at` and position stay.
    `message.created` is emitted again so that IM clients upsert it, but with no recipients: runtimes never
    get it twice. The room's thread states are rebuilt; a reply is followed by `thread.updated`.
    """
    message.content = rewrite_alias_tags(content)
    message.mentions = _mentions_of(message.content)
    message.metadata = metadata or None
    message.thread_root_id = thread_root.message_id if thread_root else None
    message.save(update_fields=["content", "mentions", "metadata", "thread_root_id"])
    # The request's files replace the old ones; an edit without files drops them (participants.md §3.6).
    message_attachments_clear(message)
    if files:
        attachments_store(message=message, files=list(files))
    threads_rebuild(room_ids=[message.room_id])
    thread = thread_state_ensure(room=message.room, root=thread_root)[0] if thread_root else None
    events.event_append(
        type=events.MESSAGE_CREATED,
        payload=events.message_created_payload(message, message.sender),
        room_id=message.room_id,
        message_id=message.message_id,
    )
    if thread is not None:
        thread_updated_emit(thread)
    return message


@transaction.atomic
def message_relay(*, stream: str, room_id: str, message: dict[str, Any], recipient_id: str) -> Event:
    """Announce a message that lives outside the IM (a Feishu chat) on `stream`, to the one it mentions.

    Only the event is stored: the message has no IM room or row. Its ids come from outside too, so one
    too long for the indexed columns is simply not indexed.
    """
    room_key = room_id if selectors.is_lookup_id(room_id) else None
    message_key = message["id"] if selectors.is_lookup_id(message["id"]) else None
    return events.event_append(
        type=events.MESSAGE_CREATED,
        payload=events.relayed_message_payload(room_id, message),
        stream=stream,
        room_id=room_key,
        message_id=message_key,
        recipients=[(recipient_id, True)],
    )
