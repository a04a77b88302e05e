"""Writes of threads (threads-attachments.md §1): thread states with their hidden context snapshot, thread
starts, reply roots, and the rebuilds that follow deletions and replacements."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from core.errors import Invalid, NotFound
from im import events, selectors, thread_selectors
from im.models import Message, Room, Thread
from im.serializers import MessageSerializer

SNAPSHOT_BEFORE = 5
SNAPSHOT_AFTER = 2
SNAPSHOT_MAX_BYTES = 32_768
EXCERPT_MAX = 160

FENCE = "```"
FENCE_LANGUAGES = frozenset(
    [
        "text",
        "txt",
        "plain",
        "json",
        "jsonc",
        "yaml",
        "yml",
        "toml",
        "go",
        "ts",
        "tsx",
        "js",
        "jsx",
        "bash",
        "sh",
        "zsh",
        "fish",
        "python",
        "py",
        "html",
        "css",
        "sql",
        "md",
        "markdown",
        "diff",
        "xml",
        "dockerfile",
        "makefile",
        "ini",
        "env",
        "csv",
    ]
)
_FIRST_WORD = re.compile(r"(\S+)\s+(.*)", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def root_excerpt(content: str) -> str:
    """The preview of a root's content (§1.5 step 4): without a code fence and its language, one line."""
    text = content.strip()
    if text.startswith(FENCE):
        text = text[len(FENCE) :].lstrip(" \t")
        line_break = re.search(r"\r\n|\r|\n", text)
        if line_break is not None:
            text = text[line_break.end() :]
        else:
            words = _FIRST_WORD.match(text)
            if words is not None and words.group(1).lower() in FENCE_LANGUAGES:
                text = words.group(2)
        text = text.strip()
        text = text.removesuffix(FENCE).strip()
    return _WHITESPACE.sub(" ", text)[:EXCERPT_MAX]


def _compact_size(messages: list[dict[str, Any]]) -> int:
    return len(json.dumps(messages, separators=(",", ":"), ensure_ascii=False).encode())


def context_snapshot(root: Message) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The hidden context of §1.5 around `root` and its ThreadContextSummary."""
    top_level = Message.objects.filter(room_id=root.room_id, thread_root_id__isnull=True).prefetch_related(
        "attachments"
    )
    before = list(top_level.filter(seq__lt=root.seq).order_by("-seq")[:SNAPSHOT_BEFORE])[::-1]
    after = list(top_level.filter(seq__gt=root.seq).order_by("seq")[:SNAPSHOT_AFTER])
    window = MessageSerializer([*before, root, *after], many=True).data
    before_count, after_count = len(before), len(after)
    while len(window) > 1 and _compact_size(window) > SNAPSHOT_MAX_BYTES:
        if before_count > after_count and before_count > 0:
            window, before_count = window[1:], before_count - 1
        elif after_count > 0:
            window, after_count = window[:-1], after_count - 1
        elif before_count > 0:
            window, before_count = window[1:], before_count - 1
        else:
            break
    summary = {
        "root_excerpt": root_excerpt(root.content),
        "message_count": len(window),
        "before_count": before_count,
        "after_count": after_count,
    }
    return window, summary


def thread_state_ensure(*, room: Room, root: Message) -> tuple[Thread, bool]:
    """The root's thread state, created with its snapshot when missing (caller's transaction, no event)."""
    existing = thread_selectors.thread_find(room=room, root_message_id=root.message_id)
    if existing is not None:
        return existing, False
    context, summary = context_snapshot(root)
    try:
        with transaction.atomic():
            thread = Thread.objects.create(
                room=room, root_message_id=root.message_id, context=context, summary=summary
            )
    except IntegrityError:
        # A concurrent first reply or start created it meanwhile.
        return Thread.objects.get(room=room, root_message_id=root.message_id), False
    return thread, True


def thread_reply_root(*, room: Room, root_id: str) -> Message:
    """The root a reply in `room` may name (§1.4): a message of this room that is not a reply itself."""
    root = selectors.message_in_room(room=room, message_id=root_id)
    if root is None:
        raise Invalid("thread root message not found")
    if root.thread_root_id is not None:
        raise Invalid("cannot reply to a thread reply")
    return root


def relation_root(*, room: Room, relates_to: dict[str, str] | None) -> Message | None:
    """The root named by a REST `relates_to` (§1.4 checks in order); None for a top-level message."""
    if relates_to is None:
        return None
    rel_type, event_id = relates_to["rel_type"].strip(), relates_to["event_id"].strip()
    if not rel_type and not event_id:
        return None
    if rel_type != thread_selectors.THREAD_REL_TYPE:
        raise Invalid("unsupported relation type")
    if not event_id:
        raise Invalid("relation event_id is required")
    return thread_reply_root(room=room, root_id=event_id)


def thread_updated_emit(thread: Thread) -> None:
    """`thread.updated` with the thread as it now is (caller's transaction, after its `message.created`)."""
    events.event_append(
        type=events.THREAD_UPDATED,
        payload=events.thread_payload(thread.room_id, thread_selectors.thread_view(thread)),
        room_id=thread.room_id,
        message_id=thread.root_message_id,
    )


@dataclass(frozen=True)
class StartedThread:
    view: dict[str, Any]
    created: bool


@transaction.atomic
def thread_start(*, room_id: str, root_message_id: str) -> StartedThread:
    """Start a thread from a top-level message (§1.6); an existing one is returned unchanged."""
    root_message_id = root_message_id.strip()
    if not root_message_id:
        raise Invalid("root_message_id is required")
    room = selectors.room_find(room_id)
    if room is None:
        raise NotFound("room not found")
    root = selectors.message_in_room(room=room, message_id=root_message_id)
    if root is None:
        raise NotFound("root message not found")
    if root.thread_root_id is not None:
        raise Invalid("cannot start a thread from a thread reply")
    thread, created = thread_state_ensure(room=room, root=root)
    view = thread_selectors.thread_view(thread)
    if created:
        events.event_append(
            type=events.THREAD_CREATED,
            payload=events.thread_payload(room.id, view),
            room_id=room.id,
            message_id=root.message_id,
        )
    return StartedThread(view, created)


def threads_rebuild(*, room_ids: list[str] | None = None) -> None:
    """Re-take every thread state's snapshot from the surviving messages (§1.9), in the caller's transaction.

    A state whose root is gone (or became a reply) is removed; the others keep `created_at`. No events.
    """
    threads = Thread.objects.all() if room_ids is None else Thread.objects.filter(room_id__in=room_ids)
    threads = list(threads)
    roots = {
        (message.room_id, message.message_id): message
        for message in Message.objects.filter(
            room_id__in={thread.room_id for thread in threads},
            message_id__in=[thread.root_message_id for thread in threads],
            thread_root_id__isnull=True,
        )
    }
    for thread in threads:
        root = roots.get((thread.room_id, thread.root_message_id))
        if root is None:
            thread.delete()
            continue
        thread.context, thread.summary = context_snapshot(root)
        thread.save(update_fields=["context", "summary"])
