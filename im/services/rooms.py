"""Writes of the IM: seed, users, rooms, invitations and messages; each emits its events after commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.db.models import Count, Max

from core.errors import Conflict, Invalid, NotFound
from im import events, selectors
from im.aliases import rewrite_alias_tags
from im.identity import (
    ADMIN_ACCENT,
    ADMIN_ID,
    MANAGER_ACCENT,
    MANAGER_ID,
    accent_color,
    avatar_initials,
    new_message_id,
    new_room_id,
)
from im.mentions import at_tag, resolve_mentions
from im.models import ChatUser, Event, EventLogState, Message, MessageKind, Room, RoomMember, UserRole

logger = logging.getLogger("csgclaw.im")

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
CLIENT_MSG_ID_MAX = 128

ROOM_CREATED_KEY = "room_created"
ROOM_MEMBERS_ADDED_KEY = "room_members_added"


def check_length(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise Invalid(f"{field} must be at most {limit} characters")


def is_chinese(locale: str) -> bool:
    return locale.strip().lower().startswith("zh")


def _person(user: ChatUser | None, user_id: str) -> str:
    if user is None:
        return user_id
    return user.name or (f"@{user.handle}" if user.handle else user.id)


def room_created_text(*, actor: ChatUser, title: str, locale: str) -> str:
    if is_chinese(locale):
        return f"{_person(actor, actor.id)} 创建了房间“{title}”"
    return f'{_person(actor, actor.id)} created the room "{title}"'


def members_added_text(*, actor: ChatUser, added: list[ChatUser], locale: str) -> str:
    names = [_person(user, user.id) for user in added]
    if is_chinese(locale):
        return f"{_person(actor, actor.id)} 邀请 {'、'.join(names)} 加入了房间"
    return f"{_person(actor, actor.id)} invited {', '.join(names)} to join the room"


# --- users -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedUser:
    id: str
    name: str
    role: str
    avatar: str
    accent_hex: str


SEED_USERS = (
    SeedUser(ADMIN_ID, "admin", UserRole.ADMIN, "AD", ADMIN_ACCENT),
    SeedUser(MANAGER_ID, "manager", UserRole.MANAGER, "MG", MANAGER_ACCENT),
)
BOOTSTRAP_ROOM_TITLE = "admin & manager"


@transaction.atomic
def seed_ensure() -> None:
    """The first-run IM state (http-api.md §9.1); idempotent and silent (it writes no events)."""
    for seed in SEED_USERS:
        user = (
            ChatUser.objects.filter(handle=seed.name).first() or ChatUser.objects.filter(pk=seed.id).first()
        )
        if user is None:
            ChatUser.objects.create(
                id=seed.id,
                name=seed.name,
                handle=seed.name,
                role=seed.role,
                avatar=seed.avatar,
                accent_hex=seed.accent_hex,
            )
        elif (user.name, user.role, user.handle) != (seed.name, seed.role, seed.name):
            user.name, user.role, user.handle = seed.name, seed.role, seed.name
            user.save(update_fields=["name", "role", "handle"])
    if selectors.direct_room_between(ADMIN_ID, MANAGER_ID) is None:
        room = Room.objects.create(
            id=new_room_id(),
            title=BOOTSTRAP_ROOM_TITLE,
            description="Bootstrap room for admin and manager.",
            is_direct=True,
        )
        _add_members(room, [ADMIN_ID, MANAGER_ID])
        _store_message(
            room=room, sender_id=MANAGER_ID, content="Bootstrap room created for admin and manager."
        )


@dataclass(frozen=True)
class EnsuredUser:
    user: ChatUser
    created: bool


@transaction.atomic
def user_ensure(*, user_id: str, name: str, handle: str, role: str) -> EnsuredUser:
    """An agent's IM user: reused unchanged when the id exists, else created (no event; callers emit)."""
    existing = selectors.user_find(user_id)
    if existing is not None:
        return EnsuredUser(existing, created=False)
    if ChatUser.objects.filter(handle=handle).exists():
        raise Invalid(f'handle "{handle}" already exists')
    lowered = name.strip().lower()
    # A re-created `u-manager` (after a user delete) keeps the fixed avatar and colour of §2.1.
    seed = next((seed for seed in SEED_USERS if seed.id == user_id), None)
    user = ChatUser.objects.create(
        id=user_id,
        name=lowered,
        handle=handle,
        role=role,
        avatar=seed.avatar if seed else avatar_initials(lowered),
        accent_hex=seed.accent_hex if seed else accent_color(user_id),
    )
    return EnsuredUser(user, created=True)


@transaction.atomic
def user_delete(*, user_id: str) -> None:
    """Remove a user and everything that only made sense with them (http-api.md §9.4)."""
    user = selectors.user_find(user_id)
    if user is None:
        raise NotFound("user not found")
    if user.id == ADMIN_ID:
        raise Conflict("cannot delete current user")
    if not _locked(ChatUser, user.pk):
        raise NotFound("user not found")
    last_state = events.user_payload(user)
    Message.objects.filter(sender=user).delete()
    RoomMember.objects.filter(user=user).delete()
    doomed = sorted(
        Room.objects.annotate(member_count=Count("memberships"))
        .filter(member_count__lt=2)
        .values_list("pk", flat=True)
    )
    Room.objects.filter(pk__in=doomed).delete()
    user.delete()
    events.event_append(type=events.USER_DELETED, payload=last_state)
    for room_id in doomed:
        events.event_append(
            type=events.ROOM_DELETED, payload=events.room_deleted_payload(room_id), room_id=room_id
        )


# --- rooms -------------------------------------------------------------------------------------------


def _add_members(room: Room, user_ids: list[str]) -> None:
    start = (room.memberships.aggregate(last=Max("position"))["last"] or 0) + 1
    RoomMember.objects.bulk_create(
        RoomMember(room=room, user_id=user_id, position=start + offset)
        for offset, user_id in enumerate(user_ids)
    )


def _store_message(
    *,
    room: Room,
    sender_id: str,
    content: str,
    kind: str = MessageKind.MESSAGE,
    event: dict | None = None,
    mentions: list[str] | None = None,
    client_msg_id: str | None = None,
    message_id: str = "",
    metadata: dict | None = None,
) -> Message:
    return Message.objects.create(
        message_id=message_id or new_message_id(),
        room=room,
        sender_id=sender_id,
        kind=kind,
        content=content,
        event=event,
        mentions=mentions or [],
        client_msg_id=client_msg_id,
        metadata=metadata or None,
    )


def _locked(model: type[models.Model], pk: str) -> bool:
    """Lock the row for this transaction; False when a concurrent transaction deleted it meanwhile.

    PostgreSQL lets concurrent deletes find the row before the first commits; the lock makes the later
    ones wait and then see it gone, so only one deletes and emits `*.deleted` (security.md S8). SQLite
    serialises write transactions already.
    """
    return model.objects.select_for_update().filter(pk=pk).exists()


def _clean_ids(values: list[str]) -> list[str]:
    """Trimmed, blanks dropped, duplicates removed keeping the first."""
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))


@transaction.atomic
def room_create(
    *,
    creator_id: str,
    title: str,
    member_ids: list[str] | None = None,
    participant_ids: list[str] | None = None,
    description: str = "",
    locale: str = "",
) -> Room:
    """A group room: the creator, then the listed members, and one `room_created` event message."""
    title = title.strip()
    description = description.strip()
    if not title:
        raise Invalid("title is required")
    if creator_id == "":
        raise Invalid("creator_id is required")
    check_length("title", title, TITLE_MAX)
    check_length("description", description, DESCRIPTION_MAX)
    creator = selectors.user_find(creator_id)
    if creator is None:
        raise Invalid("creator not found")
    # Chosen before blanks are skipped (http-api.md §6.3): `member_ids` of only blanks still wins.
    listed = _clean_ids(member_ids or participant_ids or [])
    invitees = [user_id for user_id in listed if user_id != creator.id]
    known = selectors.existing_user_ids(invitees)
    unknown = next((user_id for user_id in invitees if user_id not in known), None)
    if unknown is not None:
        raise Invalid(f"user not found: {unknown}")
    room = Room.objects.create(id=new_room_id(), title=title, description=description, is_direct=False)
    _add_members(room, [creator.id, *invitees])
    _store_message(
        room=room,
        sender_id=creator.id,
        kind=MessageKind.EVENT,
        content=room_created_text(actor=creator, title=title, locale=locale),
        event={"key": ROOM_CREATED_KEY, "actor_id": creator.id, "title": title},
    )
    return _emit_room(events.ROOM_CREATED, room)


@transaction.atomic
def direct_room_ensure(*, user: ChatUser, title: str, first_sender_id: str) -> tuple[Room, bool]:
    """The admin's direct room with `user`: reused when one exists, else created with its greeting."""
    existing = selectors.direct_room_between(ADMIN_ID, user.id)
    if existing is not None:
        return existing, False
    room = Room.objects.create(
        id=new_room_id(),
        title=title,
        description=f"Bootstrap room for admin and {title}.",
        is_direct=True,
    )
    _add_members(room, [ADMIN_ID, user.id])
    _store_message(
        room=room, sender_id=first_sender_id, content=f"Bootstrap room created for admin and {title}."
    )
    return room, True


def _emit_room(event_type: str, room: Room) -> Room:
    presented = selectors.room_get(room.id, presentable=True)
    events.event_append(type=event_type, payload=events.room_payload(presented), room_id=room.id)
    return presented


def emit_room_created(room: Room) -> Room:
    """Announce a room that a caller's transaction ensured (agent provisioning)."""
    return _emit_room(events.ROOM_CREATED, room)


@transaction.atomic
def room_delete(*, room_id: str) -> None:
    room = selectors.room_find(room_id)
    if room is None or not _locked(Room, room.pk):
        raise NotFound("room not found")
    room.delete()
    events.event_append(
        type=events.ROOM_DELETED, payload=events.room_deleted_payload(room_id), room_id=room_id
    )


@transaction.atomic
def room_invite(
    *,
    room_id: str,
    inviter_id: str,
    user_ids: list[str] | None,
    locale: str = "",
) -> Room:
    """Append members to a group room (http-api.md §6.5, §6.6)."""
    room_id = room_id.strip()
    if not room_id:
        raise Invalid("room_id is required")
    if inviter_id == "":
        raise Invalid("inviter_id is required")
    if not user_ids:
        raise Invalid("user_ids is required")
    return _invite(room_id=room_id, inviter_id=inviter_id, user_ids=_clean_ids(user_ids), locale=locale)


def _invite(*, room_id: str, inviter_id: str, user_ids: list[str], locale: str) -> Room:
    room = selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    inviter = selectors.user_find(inviter_id)
    if inviter is None:
        raise Invalid("inviter not found")
    member_ids = selectors.room_member_ids(room)
    if inviter.id not in member_ids:
        raise Invalid("inviter is not a room member")
    if room.is_direct:
        raise Invalid("cannot add members to direct room")
    known = selectors.existing_user_ids(user_ids)
    unknown = next((user_id for user_id in user_ids if user_id not in known), None)
    if unknown is not None:
        raise Invalid(f"user not found: {unknown}")
    added_ids = [user_id for user_id in user_ids if user_id not in member_ids]
    if not added_ids:
        raise Invalid("no new users to invite")
    _add_members(room, added_ids)
    added_users = {user.id: user for user in ChatUser.objects.filter(pk__in=added_ids)}
    _store_message(
        room=room,
        sender_id=inviter.id,
        kind=MessageKind.EVENT,
        content=members_added_text(actor=inviter, added=[added_users[i] for i in added_ids], locale=locale),
        event={"key": ROOM_MEMBERS_ADDED_KEY, "actor_id": inviter.id, "target_ids": added_ids},
        mentions=added_ids,
    )
    return _emit_room(events.ROOM_MEMBERS_ADDED, room)


@transaction.atomic
def room_add_agent(*, room_id: str, agent_user_id: str, inviter_id: str, locale: str = "") -> Room:
    """Join an agent's IM user to a room (http-api.md §6.11 checks 4–5)."""
    room_id = room_id.strip()
    if not room_id:
        raise Invalid("room_id is required")
    return _invite(
        room_id=room_id, inviter_id=inviter_id.strip() or ADMIN_ID, user_ids=[agent_user_id], locale=locale
    )


# --- messages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    message: Message
    created: bool


def _mentions_of(content: str) -> list[str]:
    return resolve_mentions(
        content, existing_ids=selectors.existing_user_ids, ids_by_handle=selectors.user_ids_by_handle
    )


@transaction.atomic
def message_send(
    *,
    room_id: str,
    sender_id: str,
    content: str,
    mention_id: str = "",
    client_msg_id: str = "",
) -> SentMessage:
    """Post a message (http-api.md §6.10); a repeated `client_msg_id` returns the stored message."""
    room_id = room_id.strip()
    content = content.strip()
    mention_id = mention_id.strip()
    client_msg_id = client_msg_id.strip()
    if not room_id:
        raise Invalid("room_id is required")
    if sender_id == "":
        raise Invalid("sender_id is required")
    if not content:
        raise Invalid("content is required")
    sender = selectors.user_find(sender_id)
    if sender is None:
        raise Invalid("sender not found")
    mentioned = selectors.user_find(mention_id) if mention_id else None
    if mention_id and mentioned is None:
        raise Invalid("mentioned user not found")
    room = selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    check_length("client_msg_id", client_msg_id, CLIENT_MSG_ID_MAX)
    if client_msg_id:
        existing = selectors.message_find_by_client_id(sender_id=sender.id, client_msg_id=client_msg_id)
        if existing is not None:
            return SentMessage(existing, created=False)
    content = rewrite_alias_tags(content)
    if mentioned is not None and mentioned.id not in _mentions_of(content):
        content = f"{at_tag(mentioned.id, mentioned.name)} {content}"
    try:
        with transaction.atomic():
            message = message_post(room=room, sender=sender, content=content, client_msg_id=client_msg_id)
    except IntegrityError:
        # A concurrent retry with the same client_msg_id won the insert.
        existing = selectors.message_find_by_client_id(sender_id=sender.id, client_msg_id=client_msg_id)
        if client_msg_id and existing is not None:
            return SentMessage(existing, created=False)
        raise
    return SentMessage(message, created=True)


def message_post(
    *,
    room: Room,
    sender: ChatUser,
    content: str,
    client_msg_id: str = "",
    message_id: str = "",
    metadata: dict | None = None,
) -> Message:
    """Store a text message and emit `message.created` with its bot recipients (caller's transaction).

    Alias mention tags are rewritten to user ids first (participants.md §1.4), so every create path
    stores and streams `u-…` ids.
    """
    content = rewrite_alias_tags(content)
    mentions = _mentions_of(content)
    message = _store_message(
        room=room,
        sender_id=sender.id,
        content=content,
        mentions=mentions,
        client_msg_id=client_msg_id or None,
        message_id=message_id,
        metadata=metadata,
    )
    recipients = events.message_recipients(
        member_ids=selectors.room_member_ids(room),
        sender_id=sender.id,
        mentions=mentions,
        is_direct=room.is_direct,
    )
    events.event_append(
        type=events.MESSAGE_CREATED,
        payload=events.message_created_payload(message, sender),
        room_id=room.id,
        message_id=message.message_id,
        bot_payload=events.bot_message_payload(message, sender, is_direct=room.is_direct),
        participant_payload=events.participant_message_payload(message, sender, is_direct=room.is_direct),
        recipients=recipients,
    )
    return message


def message_replace(*, message: Message, content: str, metadata: dict | None = None) -> Message:
    """Edit a message in place (participants.md §3.6) in the caller's transaction.

    Content, mentions and metadata change; id, `created_at` and position stay. `message.created` is
    emitted again so that IM clients upsert it, but with no recipients: runtimes never get it twice.
    """
    message.content = rewrite_alias_tags(content)
    message.mentions = _mentions_of(message.content)
    message.metadata = metadata or None
    message.save(update_fields=["content", "mentions", "metadata"])
    events.event_append(
        type=events.MESSAGE_CREATED,
        payload=events.message_created_payload(message, message.sender),
        room_id=message.room_id,
        message_id=message.message_id,
    )
    return message


# --- event log ---------------------------------------------------------------------------------------


@transaction.atomic
def events_prune(*, older_than: datetime) -> int:
    """Delete the log through its newest event created before `older_than`; returns how many went.

    Always a prefix of the log, so that every seq up to `pruned_through` is gone and a cursor below it is
    known to have missed events (events.md §5.6). Recipients go with their events (cascade).
    """
    through = Event.objects.filter(created_at__lt=older_than).aggregate(through=Max("seq"))["through"]
    if through is None:
        return 0
    _, deleted_by_model = Event.objects.filter(seq__lte=through).delete()
    state = EventLogState.objects.select_for_update().order_by("pk").first() or EventLogState()
    state.pruned_through = max(state.pruned_through, through)
    state.save()
    return deleted_by_model.get(Event._meta.label, 0)
