"""Reads of threads (threads-attachments.md §1.2): ThreadSummary and ThreadView objects, built for a whole
list of messages in a constant number of queries, and the thread lists of §1.7."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.errors import Invalid, NotFound
from im.identity import ADMIN_ID
from im.models import MAX_ID_LENGTH, ChatUser, Message, Room, Thread
from im.serializers import MessageSerializer

THREAD_REL_TYPE = "m.thread"


def _room_get(room_id: str) -> Room:
    room = Room.objects.filter(pk=room_id).first() if 0 < len(room_id) <= MAX_ID_LENGTH else None
    if room is None:
        raise NotFound("room not found")
    return room


def thread_find(*, room: Room, root_message_id: str) -> Thread | None:
    return Thread.objects.filter(room=room, root_message_id=root_message_id).first()


def _summaries(threads: Iterable[Thread], roots: dict[str, Message]) -> dict[str, dict[str, Any]]:
    """ThreadSummary by root id for the threads whose root is in `roots`: four queries in all."""
    wanted = [thread for thread in threads if thread.root_message_id in roots]
    if not wanted:
        return {}
    room_ids = {thread.room_id for thread in wanted}
    root_ids = [thread.root_message_id for thread in wanted]
    replies = (
        Message.objects.filter(room_id__in=room_ids, thread_root_id__in=root_ids)
        .order_by("created_at", "seq")
        .values_list("room_id", "thread_root_id", "seq", "sender_id")
    )
    reply_senders: dict[tuple[str, str], list[str]] = {}
    latest_seq: dict[tuple[str, str], int] = {}
    for room_id, root_id, seq, sender_id in replies:
        reply_senders.setdefault((room_id, root_id), []).append(sender_id)
        latest_seq[(room_id, root_id)] = seq
    latest_replies = Message.objects.filter(seq__in=latest_seq.values()).prefetch_related("attachments")
    latest = {message.seq: message for message in latest_replies}
    sender_ids = {roots[root_id].sender_id for root_id in root_ids}
    sender_ids.update(sender_id for senders in reply_senders.values() for sender_id in senders)
    names = dict(ChatUser.objects.filter(pk__in=sender_ids).values_list("pk", "name"))
    summaries = {}
    for thread in wanted:
        key = (thread.room_id, thread.root_message_id)
        senders = reply_senders.get(key, [])
        ordered = list(dict.fromkeys([roots[thread.root_message_id].sender_id, *senders]))
        summary: dict[str, Any] = {"root_id": thread.root_message_id, "reply_count": len(senders)}
        if key in latest_seq:
            summary["latest_reply"] = MessageSerializer(latest[latest_seq[key]]).data
        summary["participants"] = [
            {"id": user_id, "name": names[user_id]} if user_id in names else {"id": user_id}
            for user_id in ordered
        ]
        summary["current_user_participated"] = ADMIN_ID in ordered
        summary["context_summary"] = thread.summary
        summaries[thread.root_message_id] = summary
    return summaries


def thread_summaries_attach(messages: Iterable[Message]) -> None:
    """Set `thread_summary` on every message of the list that is the root of a thread state.

    MessageSerializer presents it as `thread` (§2.2); one query for the states, four more when any.
    """
    roots = {message.message_id: message for message in messages if message.thread_root_id is None}
    if not roots:
        return
    room_ids = {message.room_id for message in roots.values()}
    # By room only: a long history would put more ids in the query than SQLite takes.
    threads = Thread.objects.filter(room_id__in=room_ids)
    for root_id, summary in _summaries(threads, roots).items():
        roots[root_id].thread_summary = summary


def rooms_thread_summaries_attach(rooms: Iterable[Room]) -> None:
    """`thread_summaries_attach` over the prefetched messages of presented rooms, in one pass."""
    thread_summaries_attach([message for room in rooms for message in room.messages.all()])


def _views(room: Room, threads: list[Thread], *, with_context: bool) -> list[tuple[dict[str, Any], datetime]]:
    """ThreadViews of `threads` whose root still exists, in the order given, with their last activity."""
    root_ids = [thread.root_message_id for thread in threads]
    roots = {
        message.message_id: message
        for message in room.messages.filter(message_id__in=root_ids).prefetch_related("attachments")
    }
    summaries = _summaries(threads, roots)
    replies: dict[str, list[Message]] = {}
    thread_replies = room.messages.filter(thread_root_id__in=list(summaries)).prefetch_related("attachments")
    for reply in thread_replies.order_by("created_at", "seq"):
        replies.setdefault(reply.thread_root_id, []).append(reply)
    views = []
    for thread in threads:
        root = roots.get(thread.root_message_id)
        if root is None:
            continue
        root.thread_summary = summaries[root.message_id]
        view: dict[str, Any] = {"room_id": room.id, "root": MessageSerializer(root).data}
        if with_context:
            view["context"] = thread.context
        view["replies"] = MessageSerializer(replies.get(root.message_id, []), many=True).data
        view["summary"] = root.thread_summary
        thread_replies = replies.get(root.message_id)
        views.append((view, thread_replies[-1].created_at if thread_replies else root.created_at))
    return views


def thread_view(thread: Thread) -> dict[str, Any]:
    """The ThreadView with its hidden context (§1.2), as single reads and thread events present it."""
    return _views(thread.room, [thread], with_context=True)[0][0]


def _room_thread_root(room_id: str, root_message_id: str) -> tuple[Room, Thread]:
    """§1.8 checks in order: the room, the root in it, not a reply, its thread state."""
    room = _room_get(room_id)
    root = room.messages.filter(message_id=root_message_id).first()
    if root is None:
        raise NotFound("thread root message not found")
    if root.thread_root_id is not None:
        raise Invalid("thread root message is a thread reply")
    thread = thread_find(room=room, root_message_id=root_message_id)
    if thread is None:
        raise NotFound("thread not found")
    return room, thread


def thread_get(*, room_id: str, root_message_id: str) -> dict[str, Any]:
    _, thread = _room_thread_root(room_id, root_message_id)
    return thread_view(thread)


def thread_relations(*, room_id: str, root_message_id: str) -> list[dict[str, Any]]:
    """The replies of a thread (§1.8 `…/relations/{event_id}/m.thread`)."""
    return thread_get(room_id=room_id, root_message_id=root_message_id)["replies"]


def thread_list(*, room_id: str, participated_only: bool, offset: int, limit: int) -> dict[str, Any]:
    """§1.7: ThreadViews without context, newest activity first, one page of them and the next offset."""
    room = _room_get(room_id)
    dated = _views(room, list(room.threads.all()), with_context=False)
    if participated_only:
        dated = [item for item in dated if item[0]["summary"]["current_user_participated"]]
    dated.sort(key=lambda item: (item[1], item[0]["root"]["id"]), reverse=True)
    views = [view for view, _ in dated]
    start = min(offset, len(views))
    end = len(views) if limit == 0 else min(start + limit, len(views))
    page: dict[str, Any] = {"threads": views[start:end]}
    if end < len(views):
        page["next_from"] = str(end)
    return page
