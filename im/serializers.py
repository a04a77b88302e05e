"""Wire shapes of IM objects (http-api.md §2), field for field; a test pins each object's keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from im.identity import ADMIN_ID
from im.models import ChatUser, Message, MessageKind, Room

CURRENT_USER_ID = ADMIN_ID


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`; microseconds without trailing zeros, omitted when zero."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


class UserSerializer(serializers.BaseSerializer):
    def to_representation(self, user: ChatUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "name": user.name,
            "handle": user.handle,
            "role": user.role,
            "avatar": user.avatar,
            "is_online": user.is_online,
            "accent_hex": user.accent_hex,
            "created_at": format_time(user.created_at),
        }


class MessageSerializer(serializers.BaseSerializer):
    def to_representation(self, message: Message) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": message.message_id,
            "sender_id": message.sender_id,
            "kind": message.kind,
            "content": message.content,
        }
        if message.kind == MessageKind.EVENT and message.event is not None:
            data["event"] = message.event
        data["created_at"] = format_time(message.created_at)
        data["mentions"] = list(message.mentions or [])
        if message.client_msg_id:
            data["client_msg_id"] = message.client_msg_id
        if message.metadata:
            data["metadata"] = message.metadata
        return data


def presented_title(room: Room, members: list[ChatUser]) -> str:
    """A direct room of two is shown under the other member's name; every other room keeps its title."""
    if room.is_direct and len(members) == 2:
        other = next((member for member in members if member.id != CURRENT_USER_ID), None)
        if other is not None:
            return other.name
    return room.title


def subtitle(member_count: int) -> str:
    return "1 member" if member_count == 1 else f"{member_count} members"


class RoomSerializer(serializers.BaseSerializer):
    """A presented room. Expects `memberships` (with users) and `messages` prefetched, as selectors do."""

    def to_representation(self, room: Room) -> dict[str, Any]:
        members = [membership.user for membership in room.memberships.all()]
        member_ids = [member.id for member in members]
        data: dict[str, Any] = {
            "id": room.id,
            "title": presented_title(room, members),
            "subtitle": subtitle(len(members)),
        }
        if room.description:
            data["description"] = room.description
        data["members"] = member_ids
        data["participants"] = list(member_ids)
        data["is_direct"] = room.is_direct
        data["messages"] = MessageSerializer(room.messages.all(), many=True).data
        return data
