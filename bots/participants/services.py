"""Participant send (participants.md §3): a message posted as a participant, or replaced by its own id."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import IntegrityError, transaction

from bots.participants.identity import participant_resolve
from core.errors import Invalid
from im import selectors as im_selectors
from im import services as im_services
from im.attachments.storage import IncomingFile
from im.models import MAX_ID_LENGTH, ChatUser, Message, Room

# `.`/`..` and separators would make the id unusable in file paths and URLs (workspace copies, routes).
# A replacement may move a message into a thread, but not into the thread it is the root of (the spec is
# silent; the message would become its own reply).
SELF_REPLY_TEXT = "a message cannot reply to itself"
_INVALID_MESSAGE_ID = re.compile(r"[/\\\s\x00-\x1f\x7f]")


def _check_message_id(message_id: str) -> None:
    if len(message_id) > MAX_ID_LENGTH:
        raise Invalid(f"message_id must be at most {MAX_ID_LENGTH} characters")
    if message_id in (".", "..") or _INVALID_MESSAGE_ID.search(message_id):
        raise Invalid(f'message_id "{message_id}" is invalid')


def _replaceable(existing: Message, *, room: Room, sender: ChatUser) -> Message:
    """The caller's own message of this room, or the §3.4 check 10 error for anyone else's."""
    if existing.sender_id != sender.id:
        raise Invalid(f'message id "{existing.message_id}" already exists for another sender')
    if existing.room_id != room.id:
        raise Invalid(f'message id "{existing.message_id}" already exists in another room')
    return existing


@transaction.atomic
def participant_message_send(
    *,
    participant_id: str,
    room_id: str,
    text: str,
    thread_root_id: str = "",
    message_id: str = "",
    metadata: dict | None = None,
    files: Sequence[IncomingFile] = (),
) -> Message:
    """Post `text` into a room as the participant's IM user (checks of §3.4 steps 5–11, in order).

    `files` are its attachments (§3.3), validated last; with at least one the text may be empty.

    A `thread_root_id` makes it a reply in that thread (threads-attachments.md §1.4). A `message_id` of
    the sender's own message in this room replaces it (§3.6); `message.created` is then emitted again
    without recipients.
    """
    room_id, text, thread_root_id, message_id = (
        room_id.strip(),
        text.strip(),
        thread_root_id.strip(),
        message_id.strip(),
    )
    if not room_id:
        raise Invalid("room_id is required")
    if not text and not files:
        raise Invalid("text is required")
    ref = participant_resolve(participant_id)
    sender = im_selectors.user_find(ref.user_id) if ref.user_id else None
    if sender is None:
        raise Invalid("sender not found")
    room = im_selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    thread_root = im_services.thread_reply_root(room=room, root_id=thread_root_id) if thread_root_id else None
    if message_id:
        _check_message_id(message_id)
        existing = im_selectors.message_find_for_update(message_id)
        if existing is not None:
            replaced = _replaceable(existing, room=room, sender=sender)
            if thread_root is not None and thread_root.pk == replaced.pk:
                raise Invalid(SELF_REPLY_TEXT)
            return im_services.message_replace(
                message=replaced,
                content=text,
                metadata=metadata,
                thread_root=thread_root,
                files=im_services.attachments_validate(list(files)),
            )
    validated = im_services.attachments_validate(list(files))
    try:
        with transaction.atomic():
            return im_services.message_post(
                room=room,
                sender=sender,
                content=text,
                message_id=message_id,
                metadata=metadata,
                thread_root=thread_root,
                files=validated,
            )
    except IntegrityError:
        # A concurrent send with the same message_id won the insert: this one is its replacement.
        existing = im_selectors.message_find_for_update(message_id)
        if not message_id or existing is None:
            raise
        return im_services.message_replace(
            message=_replaceable(existing, room=room, sender=sender),
            content=text,
            metadata=metadata,
            thread_root=thread_root,
            files=validated,
        )
