"""Reads of attachments: by id for downloads, and a room's attachments (threads-attachments.md §2.7–§2.8)."""

from __future__ import annotations

from dataclasses import dataclass

from im.models import Attachment

# `att-` and 4–92 characters of a-z, 0-9 and `-` (§2.7 check 3).
ATTACHMENT_ID_PATTERN = r"att-[a-z0-9-]{4,92}"


def attachment_find(attachment_id: str) -> Attachment | None:
    try:
        return Attachment.objects.get(pk=attachment_id)
    except Attachment.DoesNotExist:
        return None


def room_attachment_find(*, room_id: str, attachment_id: str, for_update: bool = False) -> Attachment | None:
    """An attachment of one of the room's messages (rows always belong to their message's room)."""
    attachments = Attachment.objects.filter(room_id=room_id, pk=attachment_id)
    if for_update:
        attachments = attachments.select_for_update()
    return attachments.first()


@dataclass(frozen=True)
class AttachmentPage:
    items: list[Attachment]
    total: int
    offset: int
    limit: int


def room_attachment_list(
    *, room_id: str, query: str, message_id: str, offset: int, limit: int
) -> AttachmentPage:
    """Newest first, ties by id descending; `query` matches the name case-insensitively."""
    attachments = Attachment.objects.filter(room_id=room_id).select_related("message")
    if query:
        attachments = attachments.filter(safe_name__icontains=query)
    if message_id:
        attachments = attachments.filter(message__message_id=message_id)
    ordered = attachments.order_by("-created_at", "-id")
    return AttachmentPage(
        items=list(ordered[offset : offset + limit]), total=attachments.count(), offset=offset, limit=limit
    )
