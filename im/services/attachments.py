"""Writes of attachments (threads-attachments.md §2): validation, storage with a message, room deletes, blobs.

Rows are written in the message's transaction; blob files outlive a rolled-back one until the collector
finds them unreferenced. Every deleted row (cascades of users, rooms and message replacements included)
releases its blob once the deleting transaction commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from core.errors import Invalid, NotFound
from im import events
from im.attachments import storage
from im.attachments.media import file_facts, original_name, quoted, safe_name
from im.attachments.selectors import room_attachment_find
from im.attachments.storage import IncomingFile
from im.models import Attachment, Message, Thread

ID_RANDOM_BYTES = 16
TOKEN_BYTES = 24


@dataclass(frozen=True)
class ValidatedFile:
    incoming: IncomingFile
    original_name: str


def attachments_validate(files: list[IncomingFile]) -> list[ValidatedFile]:
    """§2.5 checks 1–3 for every file, before any is stored; the first failure is the answer (400)."""
    validated = []
    for incoming in files:
        name = incoming.name.strip() or "attachment"
        if incoming.size == 0:
            raise Invalid(f"attachment {quoted(name)} is empty")
        validated.append(ValidatedFile(incoming=incoming, original_name=original_name(incoming.name)))
    return validated


def new_attachment_id(sha256: str) -> str:
    return f"att-{sha256[:12]}-{secrets.token_hex(ID_RANDOM_BYTES)}"


def new_download_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def attachments_store(*, message: Message, files: list[ValidatedFile]) -> list[Attachment]:
    """Blobs and rows of a message's validated files, in upload order (the caller's transaction)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("attachments_store must run inside the message's transaction")
    rows = []
    for position, validated in enumerate(files):
        incoming = validated.incoming
        facts = file_facts(declared_content_type=incoming.content_type, head=incoming.head)
        storage.blob_store(incoming)
        rows.append(
            Attachment(
                id=new_attachment_id(incoming.sha256),
                message=message,
                room_id=message.room_id,
                position=position,
                created_by=message.sender_id,
                original_name=validated.original_name,
                safe_name=safe_name(validated.original_name),
                media_type=facts.media_type,
                kind=facts.kind,
                size_bytes=incoming.size,
                sha256=incoming.sha256,
                width=facts.width,
                height=facts.height,
                download_token=new_download_token(),
            )
        )
    Attachment.objects.bulk_create(rows)
    transaction.on_commit(partial(storage.release_pending, [row.sha256 for row in rows]))
    return rows


def message_attachments_clear(message: Message) -> None:
    """A replaced message loses its old files (participants.md §3.6); their blobs go after the commit."""
    message.attachments.all().delete()


def _without_attachment(context: list, attachment_id: str) -> tuple[list, bool]:
    changed = False
    edited = []
    for entry in context:
        files = entry.get("attachments") if isinstance(entry, dict) else None
        if files and any(isinstance(item, dict) and item.get("id") == attachment_id for item in files):
            entry = {**entry, "attachments": [item for item in files if item.get("id") != attachment_id]}
            if not entry["attachments"]:
                del entry["attachments"]
            changed = True
        edited.append(entry)
    return edited, changed


@transaction.atomic
def attachment_room_delete(*, room_id: str, attachment_id: str) -> None:
    """§2.8 delete: the row goes, snapshots forget it, `room.attachment_deleted` is logged."""
    attachment = room_attachment_find(room_id=room_id, attachment_id=attachment_id, for_update=True)
    if attachment is None:
        raise NotFound("attachment not found in room")
    for thread in Thread.objects.filter(room_id=room_id):
        context, changed = _without_attachment(list(thread.context or []), attachment_id)
        if changed:
            thread.context = context
            thread.save(update_fields=["context"])
    attachment.delete()
    events.event_append(
        type=events.ROOM_ATTACHMENT_DELETED,
        payload={"room_id": room_id, "attachment_id": attachment_id},
        room_id=room_id,
    )


def blob_release_if_unused(sha256: str) -> None:
    """Delete one blob once no row references it (after the commit that deleted its last row)."""
    if Attachment.objects.filter(sha256=sha256).exists():
        return
    storage.blobs_delete_unless_pending([sha256])


def attachment_blobs_collect() -> int:
    """The full collector (§2.9), run once at server start: every unreferenced, not pending blob goes."""
    storage.incoming_sweep()
    return storage.blobs_collect(set(Attachment.objects.values_list("sha256", flat=True).distinct()))


@receiver(post_delete, sender=Attachment, dispatch_uid="im-attachment-blob-release")
def _release_blob_after_commit(sender, instance: Attachment, **kwargs) -> None:
    transaction.on_commit(partial(blob_release_if_unused, instance.sha256))
