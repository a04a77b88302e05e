"""Reads of the IM: users, rooms (presented order) and messages; event log reads are in im.realtime."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Max, Prefetch, Q, QuerySet

from core.errors import Invalid, NotFound
from im.models import MAX_ID_LENGTH, ChatUser, Message, Room, RoomMember
from im.thread_selectors import rooms_thread_summaries_attach, thread_summaries_attach


def is_lookup_id(value: str) -> bool:
    """Ids longer than the column can never exist; they are never sent to the database."""
    return bool(value) and len(value) <= MAX_ID_LENGTH


def user_find(user_id: str) -> ChatUser | None:
    if not is_lookup_id(user_id):
        return None
    # get() rather than first(): first() would sort by the model's ordering on the hottest lookup.
    try:
        return ChatUser.objects.get(pk=user_id)
    except ChatUser.DoesNotExist:
        return None


def user_get(user_id: str) -> ChatUser:
    user = user_find(user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def user_list() -> list[ChatUser]:
    """Users by name in code point order (database collations differ), ties by id."""
    return sorted(ChatUser.objects.all(), key=lambda user: (user.name, user.id))


def users_by_id(user_ids: Iterable[str]) -> dict[str, ChatUser]:
    """The users among `user_ids` that exist, by id."""
    return {user.id: user for user in ChatUser.objects.filter(id__in=list(user_ids))}


def existing_user_ids(user_ids: Iterable[str]) -> set[str]:
    wanted = {user_id for user_id in user_ids if is_lookup_id(user_id)}
    if not wanted:
        return set()
    return set(ChatUser.objects.filter(pk__in=wanted).values_list("pk", flat=True))


def user_ids_by_handle(handles: Iterable[str]) -> dict[str, str]:
    wanted = {handle for handle in handles if is_lookup_id(handle)}
    if not wanted:
        return {}
    return dict(ChatUser.objects.filter(handle__in=wanted).values_list("handle", "pk"))


def _presentable(rooms: QuerySet[Room]) -> QuerySet[Room]:
    """Rooms with what RoomSerializer reads, in three queries whatever the number of rooms.

    Messages are the top-level ones (threads-attachments.md §1.3); call `rooms_thread_summaries_attach`
    on the result for their `thread` summaries.
    """
    return rooms.prefetch_related(
        Prefetch("memberships", queryset=RoomMember.objects.select_related("user").order_by("position")),
        Prefetch(
            "messages",
            queryset=Message.objects.filter(thread_root_id__isnull=True)
            .order_by("seq")
            .prefetch_related("attachments"),
        ),
    )


def room_find(room_id: str, *, presentable: bool = False) -> Room | None:
    if not is_lookup_id(room_id):
        return None
    rooms = _presentable(Room.objects.all()) if presentable else Room.objects.all()
    try:
        room = rooms.get(pk=room_id)
    except Room.DoesNotExist:
        return None
    if presentable:
        rooms_thread_summaries_attach([room])
    return room


def room_get(room_id: str, *, presentable: bool = False) -> Room:
    room = room_find(room_id, presentable=presentable)
    if room is None:
        raise NotFound("room not found")
    return room


def room_list() -> list[Room]:
    """Newest top-level message first, rooms without one last; ties by creation time (newest first), id."""
    rooms = Room.objects.annotate(
        last_message_at=Max("messages__created_at", filter=Q(messages__thread_root_id__isnull=True))
    ).order_by(F("last_message_at").desc(nulls_last=True), "-created_at", "id")
    presented = list(_presentable(rooms))
    rooms_thread_summaries_attach(presented)
    return presented


def room_member_ids(room: Room) -> list[str]:
    return list(room.memberships.order_by("position").values_list("user_id", flat=True))


def room_members(room: Room) -> list[ChatUser]:
    return [membership.user for membership in room.memberships.select_related("user").order_by("position")]


def direct_room_between(user_a: str, user_b: str) -> Room | None:
    """A direct room whose members are exactly these two users."""
    candidates = Room.objects.filter(is_direct=True, memberships__user_id=user_a).filter(
        memberships__user_id=user_b
    )
    for room in candidates:
        if set(room_member_ids(room)) == {user_a, user_b}:
            return room
    return None


def message_list(room_id: str, *, include_thread_replies: bool = False) -> list[Message]:
    """A room's history in creation order: top-level only unless replies are asked for (§1.3), roots with
    their `thread` summary."""
    if not room_id:
        raise Invalid("room_id is required")
    room = room_get(room_id)
    messages = room.messages.order_by("seq").prefetch_related("attachments")
    if not include_thread_replies:
        messages = messages.filter(thread_root_id__isnull=True)
    listed = list(messages)
    thread_summaries_attach(listed)
    return listed


def message_in_room(*, room: Room, message_id: str) -> Message | None:
    """The message `message_id` of `room`, or None (also for an id no message can have)."""
    if not is_lookup_id(message_id):
        return None
    return Message.objects.filter(room=room, message_id=message_id).first()


def message_find_by_client_id(*, sender_id: str, client_msg_id: str) -> Message | None:
    return Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).first()


def message_find_for_update(message_id: str) -> Message | None:
    """The message with this wire id, row-locked for the caller's transaction (a replace must not race)."""
    return Message.objects.select_for_update().filter(message_id=message_id).first()
