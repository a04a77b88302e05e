"""Wire shapes of attachments (threads-attachments.md §2.3, §2.8)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rest_framework import serializers

from core.api import WireSerializer
from core.times import format_time
from im.models import Attachment, AttachmentKind


def download_url(attachment: Attachment) -> str:
    """Relative, with the attachment's fixed download token: whoever holds it can fetch the file."""
    return f"/api/v1/attachments/{attachment.id}?token={quote(attachment.download_token, safe='')}"


class AttachmentFactsSerializer(WireSerializer):
    """The facts of a stored file that both the message and the room-list shapes start with."""

    id = serializers.CharField()
    name = serializers.CharField(source="safe_name")
    kind = serializers.CharField()
    media_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, attachment: Attachment) -> str:
        return format_time(attachment.created_at)


class AttachmentSerializer(AttachmentFactsSerializer):
    """An Attachment object on a message; `workspace_path` is added only in participant deliveries."""

    download_url = serializers.SerializerMethodField()
    # Only images have one (= download_url).
    preview_url = serializers.SerializerMethodField()
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        data = super().to_representation(attachment)
        if data["preview_url"] is None:
            del data["preview_url"]
        return data

    def get_download_url(self, attachment: Attachment) -> str:
        return download_url(attachment)

    def get_preview_url(self, attachment: Attachment) -> str | None:
        return download_url(attachment) if attachment.kind == AttachmentKind.IMAGE else None


class RoomAttachmentSerializer(AttachmentFactsSerializer):
    """An item of a room's attachment list (§2.8): never a download URL, token or workspace path."""

    message_id = serializers.CharField(source="message.message_id")
    sender_id = serializers.CharField(source="message.sender_id")


class RoomAttachmentPageSerializer(WireSerializer):
    """A page of a room's attachments (an AttachmentPage)."""

    items = RoomAttachmentSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # The page's `offset` answers as `from`, which cannot be a Python attribute name.
        fields = super().get_fields()
        return {
            "items": fields["items"],
            "total": fields["total"],
            "from": serializers.IntegerField(source="offset"),
            "limit": fields["limit"],
        }
