"""Writes of the bot bridge: bot send (and, with the Bots REST API, bot bindings)."""

from __future__ import annotations

from django.db import transaction

from im import selectors as im_selectors
from im import services as im_services
from im.errors import Invalid
from im.models import Message


@transaction.atomic
def bot_message_send(*, bot_id: str, room_id: str, text: str, chat_id: str = "") -> Message:
    """Post `text` into a room as the bot (http-api.md §7.5); the bot need not be a member.

    `chat_id` is what older PicoClaw builds send instead of `room_id`.
    """
    room_id = room_id.strip() or chat_id.strip()
    text = text.strip()
    if not room_id:
        raise Invalid("room_id is required")
    if not text:
        raise Invalid("text is required")
    sender = im_selectors.user_find(bot_id)
    if sender is None:
        raise Invalid("sender not found")
    room = im_selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    return im_services.message_post(room=room, sender=sender, content=text)
