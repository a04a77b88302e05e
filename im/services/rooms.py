"""Writes of rooms: group and direct rooms, invitations and deletes, each with its event message and event."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from core.errors import Invalid, NotFound
from im import events, selectors
from im.identity import ADMIN_ID, new_room_id
from im.models import ChatUser, MessageKind, Room, RoomMember
from im.services.common import check_length, row_locked
from im.services.messages import message_store

TITLE_MAX = 200
DESCRIPTION_MAX = 2000

ROOM_CREATED_KEY = "room_created"
ROOM_MEMBERS_ADDED_KEY = "room_members_added"


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


def members_append(room: Room, user_ids: list[str]) -> None:
    """Memberships after the room's last position, in the given order (caller's transaction)."""
    start = (room.memberships.aggregate(last=Max("position"))["last"] or 0) + 1
    RoomMember.objects.bulk_create(
        RoomMember(room=room, user_id=user_id, position=start + offset)
        for offset, user_id in enumerate(user_ids)
    )


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
    members_append(room, [creator.id, *invitees])
    message_store(
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
    members_append(room, [ADMIN_ID, user.id])
    message_store(
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
    if room is None or not row_locked(Room, room.pk):
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
    members_append(room, added_ids)
    added_users = {user.id: user for user in ChatUser.objects.filter(pk__in=added_ids)}
    message_store(
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
