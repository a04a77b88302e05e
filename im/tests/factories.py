"""Test helpers: IM rows straight to the ORM (no events), JSON requests, event-log snapshots, threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max
from django.test import Client
from django.utils import timezone

from agents.models import Agent, AgentRole, AgentStatus
from im.identity import ADMIN_ID, MANAGER_ID, accent_color, avatar_initials, new_message_id, new_room_id
from im.models import ChatUser, Event, Message, MessageKind, Room, RoomMember, UserRole
from im.selectors import direct_room_between

ABSENT = object()  # marks a body field to leave out


def make_user(
    user_id: str = "u-alice",
    *,
    name: str | None = None,
    handle: str | None = None,
    role: str = UserRole.WORKER,
    created_at: datetime | None = None,
) -> ChatUser:
    """A worker-like IM user; name and handle default to the id without `u-`."""
    name = user_id.removeprefix("u-") if name is None else name
    return ChatUser.objects.create(
        id=user_id,
        name=name,
        handle=name if handle is None else handle,
        role=role,
        avatar=avatar_initials(name),
        accent_hex=accent_color(user_id),
        created_at=created_at or timezone.now(),
    )


def make_room(
    *,
    members: Iterable[str] = (ADMIN_ID,),
    title: str = "project",
    description: str = "",
    is_direct: bool = False,
    room_id: str | None = None,
    created_at: datetime | None = None,
) -> Room:
    room = Room.objects.create(
        id=room_id or new_room_id(),
        title=title,
        description=description,
        is_direct=is_direct,
        created_at=created_at or timezone.now(),
    )
    for position, user_id in enumerate(members, start=1):
        RoomMember.objects.create(room=room, user_id=user_id, position=position)
    return room


def make_message(
    room: Room,
    *,
    sender_id: str = ADMIN_ID,
    content: str = "hello",
    mentions: Iterable[str] = (),
    client_msg_id: str | None = None,
    kind: str = MessageKind.MESSAGE,
    event: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> Message:
    return Message.objects.create(
        message_id=new_message_id(),
        room=room,
        sender_id=sender_id,
        kind=kind,
        content=content,
        event=event,
        mentions=list(mentions),
        client_msg_id=client_msg_id,
        created_at=created_at or timezone.now(),
    )


def make_agent(agent_id: str = "u-alice", *, name: str | None = None, role: str = AgentRole.WORKER) -> Agent:
    """An agent row only: its IM user and direct room are left for the code under test to ensure."""
    name = agent_id.removeprefix("u-") if name is None else name
    return Agent.objects.create(
        id=agent_id, name=name, slug=name.lower(), role=role, status=AgentStatus.UNKNOWN
    )


def seed_room() -> Room:
    """The admin↔manager room of the first-run seed (http-api.md §9.1)."""
    room = direct_room_between(ADMIN_ID, MANAGER_ID)
    assert room is not None, "the first-run seed room is missing"
    return room


def row_counts() -> dict[str, int]:
    """Counts of every IM table a write could touch, to prove that a rejected request wrote nothing."""
    return {
        model.__name__: model.objects.count() for model in (ChatUser, Room, RoomMember, Message, Event, Agent)
    }


def event_mark() -> int:
    """The newest event seq now; pass it to `events_after` to see what a call emitted."""
    return Event.objects.aggregate(newest=Max("seq"))["newest"] or 0


def events_after(mark: int) -> list[Event]:
    return list(Event.objects.filter(seq__gt=mark).order_by("seq"))


def event_types_after(mark: int) -> list[str]:
    return [event.type for event in events_after(mark)]


def json_text(body: Any) -> str:
    """A request body: dicts and lists become JSON (fields set to ABSENT dropped), text passes unchanged."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if value is not ABSENT}
    return body if isinstance(body, (str, bytes)) else json.dumps(body)


def post_json(client: Client, url: str, body: Any, **headers: str):
    """POST a JSON body with a non-JSON content type: the server must not care (http-api.md §1.2)."""
    return client.post(url, data=json_text(body), content_type="text/plain", headers=headers)


def error_text(response) -> str:
    """The plain-text error message without its trailing newline (asserting that it is there)."""
    assert response["Content-Type"] == "text/plain; charset=utf-8", response.content
    body = response.content.decode()
    assert body.endswith("\n"), body
    return body[:-1]


@dataclass(frozen=True)
class Check:
    """One validation step of an endpoint: the field values that fail it, and the answer it gives."""

    name: str
    defect: dict[str, Any]
    status: int
    text: str


def failing_body(
    base: dict[str, Any], checks: Sequence[Check], index: int, *, with_later_defects: bool
) -> dict:
    """`base` (which passes every check) broken for `checks[index]` only, or also for every later check
    whose fields are free, which proves that the earlier check answers first."""
    body = {**base, **checks[index].defect}
    if with_later_defects:
        used = set(checks[index].defect)
        for later in checks[index + 1 :]:
            if used.isdisjoint(later.defect):
                body.update(later.defect)
                used |= set(later.defect)
    return body


def in_own_thread(fn: Callable[..., Any], *args: Any) -> threading.Thread:
    """Run `fn` on a new thread with its own database connection, like another request would."""

    def run() -> None:
        try:
            fn(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
