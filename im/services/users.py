"""Writes of users: the first-run seed, an agent's IM user, and deleting a user with what only they held."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count

from core.errors import Conflict, Invalid, NotFound
from im import events, selectors
from im.identity import (
    ADMIN_ACCENT,
    ADMIN_ID,
    MANAGER_ACCENT,
    MANAGER_ID,
    accent_color,
    avatar_initials,
    new_room_id,
)
from im.models import ChatUser, Message, Room, RoomMember, UserRole
from im.services.common import row_locked
from im.services.messages import message_store
from im.services.rooms import members_append
from im.services.threads import threads_rebuild


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
        members_append(room, [ADMIN_ID, MANAGER_ID])
        message_store(
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
    if not row_locked(ChatUser, user.pk):
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
    threads_rebuild()
    user.delete()
    events.event_append(type=events.USER_DELETED, payload=last_state)
    for room_id in doomed:
        events.event_append(
            type=events.ROOM_DELETED, payload=events.room_deleted_payload(room_id), room_id=room_id
        )
