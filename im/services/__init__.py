"""The IM app's service API: every write other apps may call, re-exported from its concept module."""

from im.services.attachments import (
    ValidatedFile,
    attachment_blobs_collect,
    attachment_room_delete,
    attachments_validate,
)
from im.services.common import check_length
from im.services.eventlog import events_prune
from im.services.messages import SentMessage, message_post, message_relay, message_replace, message_send
from im.services.rooms import (
    direct_room_ensure,
    emit_room_created,
    room_add_agent,
    room_create,
    room_delete,
    room_invite,
)
from im.services.threads import thread_reply_root, thread_start, threads_rebuild
from im.services.users import SEED_USERS, EnsuredUser, seed_ensure, user_delete, user_ensure

__all__ = [
    "SEED_USERS",
    "EnsuredUser",
    "SentMessage",
    "ValidatedFile",
    "attachment_blobs_collect",
    "attachment_room_delete",
    "attachments_validate",
    "check_length",
    "direct_room_ensure",
    "emit_room_created",
    "events_prune",
    "message_post",
    "message_relay",
    "message_replace",
    "message_send",
    "room_add_agent",
    "room_create",
    "room_delete",
    "room_invite",
    "seed_ensure",
    "thread_reply_root",
    "thread_start",
    "threads_rebuild",
    "user_delete",
    "user_ensure",
]
