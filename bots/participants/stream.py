"""The participant event stream's feed (participants.md §2.3–2.6): selection, rendering, start and catch-up.

Delivery reuses the recipients fixed when the message was written (the bot stream's rules), so the feed
selects `message.created` rows of the participant's IM user and renders the stored `participant_payload`
for this recipient. Unlike the bot stream it starts from its remembered cursor of any age (else 0) and
filters that catch-up, so a reconnecting runtime gets what it missed but not what it already answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from agents.models import Agent
from bots.bridge.cursors import StoredCursorMemory, StreamCursorKind
from bots.participants.identity import ParticipantRef, strip_participant_id
from im.aliases import MANAGER_ALIASES
from im.attachments.workspace import with_workspace_paths
from im.events import MESSAGE_CREATED
from im.identity import MANAGER_ID
from im.mentions import HANDLE_TOKEN, at_tag
from im.models import ChatUser, EventStream, Message, StreamCursor
from im.realtime.eventlog import EventSelection, LoggedEvent, event_newest_seq, event_seq_of_message
from im.realtime.sse import Feed, StartCursor, requested_seq
from im.selectors import is_lookup_id

FRAME_EVENT = "message"
HEARTBEAT = b": heartbeat\n\n"

_AT_OPEN = re.compile(r'<at user_id="([^"]*)">')
_LINE_BREAKS = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class Recipient:
    """What §2.5 needs of the stream's participant: P, U, H, N, `s` and the ids its tags may carry."""

    participant_id: str
    user_id: str
    handle: str
    name: str
    stripped: str
    aliases: frozenset[str]
    # The agent's workspace on the host, where attachments are copied (threads-attachments.md §2.6);
    # None for the admin and unresolved participants.
    workspace: Path | None = None


def recipient_load(ref: ParticipantRef) -> Recipient:
    """The recipient behind a resolved (or unresolved) path id; its IM user's handle and name if any."""
    user = ChatUser.objects.filter(pk=ref.user_id).first() if ref.user_id else None
    stripped = strip_participant_id(ref.agent_id or ref.user_id)
    aliases: set[str] = set()
    if ref.user_id:
        aliases = {ref.user_id, *(f"{prefix}{stripped}" for prefix in ("u-", "user-", "agent-", "pt-", ""))}
        if ref.agent_id:
            aliases.add(ref.agent_id)
        if ref.agent_id == MANAGER_ID:
            aliases |= MANAGER_ALIASES
    aliases.discard(ref.participant_id)
    slug = (
        Agent.objects.filter(pk=ref.agent_id).values_list("slug", flat=True).first() if ref.agent_id else None
    )
    return Recipient(
        workspace=_agent_workspace(slug) if slug else None,
        participant_id=ref.participant_id,
        user_id=ref.user_id,
        handle=user.handle if user else "",
        name=user.name if user else "",
        stripped=stripped,
        aliases=frozenset(aliases),
    )


def render_text(text: str, recipient: Recipient, *, mentioned: bool) -> str:
    """§2.5 steps 1–2: alias tags become the participant id; `@handle` becomes a tag when mentioned."""
    own_tag = f'<at user_id="{recipient.participant_id}">'
    text = _AT_OPEN.sub(
        lambda match: own_tag if match.group(1) in recipient.aliases else match.group(0), text
    )
    if not mentioned or own_tag in text:
        return text
    handles = {recipient.handle.lower(), recipient.stripped.lower()} - {""}
    return HANDLE_TOKEN.sub(
        lambda match: (
            at_tag(recipient.participant_id, recipient.name)
            if match.group(1).lower() in handles
            else match.group(0)
        ),
        text,
    )


def _agent_workspace(slug: str) -> Path:
    """`<home>/agents/<slug>/workspace` (sandbox.md §5), which provisioning creates."""
    return Path(settings.CSGCLAW_HOME) / "agents" / slug / "workspace"


def _thread_context(stored: dict[str, Any], recipient: Recipient, *, room_id: str) -> dict[str, Any]:
    """The snapshot with its messages' attachments copied too, under each message's own id."""
    messages = stored.get("context")
    if not messages:
        return stored
    delivered = []
    for message in messages:
        if isinstance(message, dict) and message.get("attachments"):
            files = with_workspace_paths(
                message["attachments"],
                workspace=recipient.workspace,
                room_id=room_id,
                message_id=message["id"],
            )
            message = {**message, "attachments": files}
        delivered.append(message)
    return {**stored, "context": delivered}


def participant_event_data(event: LoggedEvent, *, recipient: Recipient) -> dict[str, Any]:
    """The stored frame with this recipient's text, `mentions`/`mentioned` and context keys (§2.4), and
    its attachments copied into the recipient's workspace (§2.5 step 4).

    A frame with attachments is rendered on a stream thread (`frame_copies_files`), not on the event loop.
    """
    stored = event.participant_payload or {}
    mentioned = event.mentioned
    data: dict[str, Any] = {}
    for key, value in stored.items():
        if key == "text":
            data[key] = render_text(value, recipient, mentioned=mentioned)
        elif key == "context":
            data[key] = _context(value, recipient, mentioned=mentioned)
        elif key == "attachments":
            data[key] = with_workspace_paths(
                value,
                workspace=recipient.workspace,
                room_id=stored["room_id"],
                message_id=stored["message_id"],
            )
        elif key == "thread_context":
            data[key] = _thread_context(value, recipient, room_id=stored["room_id"])
        else:
            data[key] = value
        if key == "timestamp" and mentioned:
            data["mentions"] = [recipient.participant_id]
            data["mentioned"] = True
    return data


def frame_copies_files(event: LoggedEvent) -> bool:
    """Whether rendering this event's frame copies attachments: its own, or those of its thread context."""
    stored = event.participant_payload or {}
    if stored.get("attachments"):
        return True
    context = (stored.get("thread_context") or {}).get("context") or ()
    return any(isinstance(message, dict) and message.get("attachments") for message in context)


def _context(stored: dict[str, Any], recipient: Recipient, *, mentioned: bool) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for key, value in stored.items():
        context[key] = value
        if key == "channel":
            context["account"] = recipient.participant_id
        elif key == "message_id" and mentioned:
            context["mentioned"] = True
    return context


def participant_frame_id(event: LoggedEvent) -> str:
    """The SSE id is the message id (§2.2), without line breaks that would end the `id:` line."""
    return _LINE_BREAKS.sub("", (event.participant_payload or {}).get("message_id", ""))


class ParticipantCursorMemory(StoredCursorMemory):
    """The participant's remembered cursor (§2.6): recalled at any age, unlike the bot streams' memory."""

    def recall(self) -> int | None:
        if not is_lookup_id(self.key):
            return None
        return StreamCursor.objects.filter(kind=self.kind, key=self.key).values_list("seq", flat=True).first()


def _requested_cursor(value: str | None) -> int | None:
    """A seq in ASCII digits, or the seq of any stored message's `message.created` event."""
    if not value:
        return None
    seq = requested_seq(value, stream=EventStream.IM)
    if seq is None and is_lookup_id(value):
        seq = event_seq_of_message(stream=EventStream.IM, message_id=value)
    return seq


def participant_start(feed: Feed, requested: tuple[str | None, ...]) -> StartCursor:
    """§2.6: the first usable requested cursor, else the remembered one, else 0; never a reset.

    Everything up to the newest seq at connect time is a catch-up, filtered by `catch_up_keep`.
    """
    cursor = next((seq for seq in map(_requested_cursor, requested) if seq is not None), None)
    if cursor is None and feed.memory is not None:
        cursor = feed.memory.recall()
    newest = event_newest_seq()
    if cursor is None or cursor > newest:
        cursor = 0
    return StartCursor(cursor, reset=False, catch_up_through=newest)


def catch_up_keep(events: list[LoggedEvent], *, recipient: Recipient) -> list[LoggedEvent]:
    """The catch-up rows still worth sending (§2.6): recent, from a human, unanswered, still there."""
    by_id = {event.participant_payload["message_id"]: event for event in events if event.participant_payload}
    messages = list(
        Message.objects.filter(message_id__in=list(by_id)).only(
            "seq", "message_id", "room_id", "sender_id", "created_at"
        )
    )
    agents = set(
        Agent.objects.filter(pk__in={message.sender_id for message in messages}).values_list("pk", flat=True)
    )
    answered = dict(
        Message.objects.filter(
            room_id__in={message.room_id for message in messages}, sender_id=recipient.user_id
        )
        .values("room_id")
        .annotate(last=Max("seq"))
        .values_list("room_id", "last")
    )
    oldest = timezone.now() - timedelta(seconds=settings.CSGCLAW_PARTICIPANT_REPLAY_WINDOW)
    kept = {
        message.message_id
        for message in messages
        if message.created_at >= oldest
        and message.sender_id not in agents
        and answered.get(message.room_id, 0) < message.seq
    }
    return [
        event
        for event in events
        if event.participant_payload and event.participant_payload["message_id"] in kept
    ]


def participant_feed(recipient: Recipient) -> Feed:
    """The feed of one participant; an unresolved one selects nothing and remembers nothing."""
    memory = (
        ParticipantCursorMemory(kind=StreamCursorKind.PARTICIPANT, key=recipient.participant_id)
        if recipient.user_id
        else None
    )
    return Feed(
        selection=EventSelection(
            stream=EventStream.IM, recipient_id=recipient.user_id, types=(MESSAGE_CREATED,)
        ),
        data=partial(participant_event_data, recipient=recipient),
        event_name=FRAME_EVENT,
        memory=memory,
        frame_id=participant_frame_id,
        heartbeat=HEARTBEAT,
        start=participant_start,
        catch_up_filter=partial(catch_up_keep, recipient=recipient),
        data_touches_disk=frame_copies_files,
    )
