"""Sending into Feishu chats as a bot (http-api.md §8.1), and relaying mention messages to the mentioned bot.

The relay is the `feishu` stream of the event log (events.md §4): a PicoClaw agent that lives in Feishu
hears a message sent to it through this server even though Feishu does not deliver a bot's own sends to
other bots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from bots.feishu.client import FeishuError, feishu_app_configured, feishu_bot_info, feishu_send_text
from core.errors import Invalid
from core.times import format_time
from im.identity import MANAGER_ID, new_message_id
from im.models import EventStream, MessageKind
from im.services.messages import message_relay


@dataclass(frozen=True)
class FeishuSentMessage:
    """A message as sent into Feishu; `data()` is both the 201 body and the relay frame's `message`."""

    id: str
    sender_id: str
    content: str
    created_at_text: str
    mentions: list[str]

    def data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "kind": MessageKind.MESSAGE.value,
            "content": self.content,
            "created_at": self.created_at_text,
            "mentions": list(self.mentions),
        }


def feishu_message_send(
    *, room_id: str, sender_id: str, content: str, mention_id: str = ""
) -> FeishuSentMessage:
    """Send `content` into the Feishu chat `room_id` as the app of `sender_id` (else the manager's app).

    With `mention_id`, the text sent to Feishu starts with an `<at>` tag for the mentioned bot and the
    message is published on the Feishu relay stream for that bot's open_id. Every failure is Invalid
    with the contract's text.

    Not one transaction: the Feishu calls must not hold the event log's write lock, and only the relay
    event is written (by im's `message_relay`), after Feishu accepted the message.
    """
    room_id, sender_id, content, mention_id = (
        room_id.strip(),
        sender_id.strip(),
        content.strip(),
        mention_id.strip(),
    )
    if not room_id:
        raise Invalid("room_id is required")
    if not sender_id:
        raise Invalid("sender_id is required")
    if not content:
        raise Invalid("content is required")
    sender_app = sender_id if feishu_app_configured(sender_id) else MANAGER_ID
    if not feishu_app_configured(sender_app):
        raise Invalid(f'feishu app is not configured for "{MANAGER_ID}"')
    if mention_id and not feishu_app_configured(mention_id):
        raise Invalid(f'feishu app is not configured for mention "{mention_id}"')

    fallback_id = new_message_id()
    try:
        sender_open_id = feishu_bot_info(sender_app).open_id
        mention_open_id = feishu_bot_info(mention_id).open_id if mention_id else ""
        text = f'<at user_id="{mention_open_id}">{mention_id}</at> {content}' if mention_id else content
        feishu_id = feishu_send_text(bot_id=sender_app, chat_id=room_id, text=text, uuid=fallback_id)
    except FeishuError as exc:
        raise Invalid(exc.message) from exc

    message = FeishuSentMessage(
        id=feishu_id or fallback_id,
        sender_id=sender_open_id,
        content=content,
        created_at_text=format_time(timezone.now()),
        mentions=[mention_open_id] if mention_id else [],
    )
    if mention_id:
        message_relay(
            stream=EventStream.FEISHU, room_id=room_id, message=message.data(), recipient_id=mention_open_id
        )
    return message
