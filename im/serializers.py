"""Wire shapes of IM objects (http-api.md §2), field for field; a test pins each object's keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import WireSerializer
from core.times import format_time
from im.attachments.wire import AttachmentSerializer
from im.identity import ADMIN_ID
from im.models import ChatUser, Message, MessageKind, Room

CURRENT_USER_ID = ADMIN_ID


@extend_schema_field(OpenApiTypes.DATETIME)
class TimeField(serializers.Field):
    """A moment as every object carries it (format_time)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: datetime) -> str:
        return format_time(value)


class UserSerializer(WireSerializer):
    """A user (http-api.md §2.1)."""

    id = serializers.CharField()
    name = serializers.CharField()
    handle = serializers.CharField()
    role = serializers.CharField()
    avatar = serializers.CharField()
    is_online = serializers.BooleanField()
    accent_hex = serializers.CharField()
    created_at = TimeField()


@extend_schema_field(
    {"type": "object", "properties": {"rel_type": {"type": "string"}, "event_id": {"type": "string"}}}
)
class RelatesToField(serializers.Field):
    """A thread reply's relation to its root (threads-attachments.md §2.2), from `thread_root_id`."""

    def to_representation(self, root_id: str) -> dict[str, str]:
        return {"rel_type": "m.thread", "event_id": root_id}


@extend_schema_field(OpenApiTypes.OBJECT)
class ThreadSummaryField(serializers.Field):
    """The ThreadSummary a selector attached to a root (im.thread_selectors); absent on other messages."""

    def get_attribute(self, message: Message) -> dict[str, Any] | None:
        return getattr(message, "thread_summary", None)

    def to_representation(self, summary: dict[str, Any]) -> dict[str, Any]:
        return summary


class MessageSerializer(WireSerializer):
    """A message (http-api.md §2.3, threads-attachments.md §2.2)."""

    id = serializers.CharField(source="message_id")
    sender_id = serializers.CharField()
    kind = serializers.CharField()
    content = serializers.CharField()
    # Only event messages carry it (the system line's structured form).
    event = serializers.JSONField(required=False)
    created_at = TimeField()
    mentions = serializers.ListField(child=serializers.CharField())
    relates_to = RelatesToField(source="thread_root_id", required=False)
    thread = ThreadSummaryField(required=False)
    # In upload order, omitted when none (threads-attachments.md §2.3); lists prefetch them.
    attachments = AttachmentSerializer(many=True, required=False)
    client_msg_id = serializers.CharField(required=False)
    metadata = serializers.JSONField(required=False)

    def to_representation(self, message: Message) -> dict[str, Any]:
        data = super().to_representation(message)
        if message.kind != MessageKind.EVENT:
            data.pop("event", None)
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


def _members(room: Room) -> list[ChatUser]:
    return [membership.user for membership in room.memberships.all()]


class RoomSerializer(WireSerializer):
    """A presented room. Expects `memberships` (with users) and `messages` prefetched, as selectors do."""

    id = serializers.CharField()
    title = serializers.SerializerMethodField()
    subtitle = serializers.SerializerMethodField()
    description = serializers.CharField(required=False)
    members = serializers.SerializerMethodField()
    participants = serializers.SerializerMethodField()
    is_direct = serializers.BooleanField()
    messages = MessageSerializer(many=True)

    def get_title(self, room: Room) -> str:
        return presented_title(room, _members(room))

    def get_subtitle(self, room: Room) -> str:
        return subtitle(len(room.memberships.all()))

    def get_members(self, room: Room) -> list[str]:
        return [member.id for member in _members(room)]

    def get_participants(self, room: Room) -> list[str]:
        return self.get_members(room)


class BootstrapSerializer(WireSerializer):
    """The workspace's first state (http-api.md §6.1): users, presented rooms and the stream cursor."""

    current_user_id = serializers.CharField()
    users = UserSerializer(many=True)
    rooms = RoomSerializer(many=True)
    last_event_id = serializers.IntegerField()
