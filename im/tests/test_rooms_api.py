"""Room routes (http-api.md §6.2–6.6, §6.11): shapes key by key, checks in order, event messages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from im.identity import ADMIN_ID
from im.models import ChatUser, Event, Message, Room, RoomMember
from im.tests.factories import (
    ABSENT,
    Check,
    error_text,
    event_mark,
    event_types_after,
    events_after,
    failing_body,
    make_agent,
    make_message,
    make_room,
    make_user,
    post_json,
    row_counts,
    seed_room,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

ROOM_KEYS = ["id", "title", "subtitle", "description", "members", "participants", "is_direct", "messages"]
ROOM_KEYS_WITHOUT_DESCRIPTION = [key for key in ROOM_KEYS if key != "description"]
EVENT_MESSAGE_KEYS = ["id", "sender_id", "kind", "content", "event", "created_at", "mentions"]
USER_KEYS = ["id", "name", "handle", "role", "avatar", "is_online", "accent_hex", "created_at"]
ROOM_ID = re.compile(r"^room-\d{19}$")
MESSAGE_ID = re.compile(r"^msg-\d{19}$")

CREATE_PATHS = ("/api/v1/im/conversations", "/api/v1/im/rooms", "/api/v1/rooms")
INVITE_PATHS = ("/api/v1/im/conversations/members", "/api/v1/rooms/invite", "/api/v1/im/rooms/invite")
GROUP = "room-group"
DIRECT = "room-direct"


@pytest.fixture(autouse=True)
def people():
    """bob, carol and dan; a group room of admin and bob; a direct room of admin and bob."""
    make_user("u-bob")
    make_user("u-carol")
    make_user("u-dan")
    make_room(room_id=GROUP, title="group", members=[ADMIN_ID, "u-bob"])
    make_room(room_id=DIRECT, title="admin & bob", members=[ADMIN_ID, "u-bob"], is_direct=True)


# --- list -------------------------------------------------------------------------------------------


def test_list_rooms_presents_each_room(client):
    Room.objects.filter(pk__in=[GROUP, DIRECT]).delete()
    make_room(room_id="room-solo", title="solo", members=[ADMIN_ID], description="just me")

    rooms = client.get("/api/v1/rooms").json()

    by_id = {room["id"]: room for room in rooms}
    solo = by_id["room-solo"]
    assert list(solo) == ROOM_KEYS
    assert solo == {
        "id": "room-solo",
        "title": "solo",
        "subtitle": "1 member",
        "description": "just me",
        "members": [ADMIN_ID],
        "participants": [ADMIN_ID],
        "is_direct": False,
        "messages": [],
    }
    seeded = by_id[seed_room().id]
    assert list(seeded) == ROOM_KEYS
    assert (seeded["title"], seeded["subtitle"], seeded["is_direct"]) == ("manager", "2 members", True)
    assert seeded["description"] == "Bootstrap room for admin and manager."


def test_a_direct_room_of_two_is_titled_after_the_member_who_is_not_the_current_user(client):
    make_room(room_id="room-three", title="stored", members=[ADMIN_ID, "u-bob", "u-carol"], is_direct=True)
    make_room(room_id="room-pair", title="pair", members=["u-carol", ADMIN_ID])

    titles = {room["id"]: room["title"] for room in client.get("/api/v1/rooms").json()}

    assert titles[DIRECT] == "bob"
    assert titles["room-three"] == "stored"
    assert titles["room-pair"] == "pair", "group rooms keep their title even with two members"
    assert Room.objects.get(pk=DIRECT).title == "admin & bob", "presentation never changes the stored title"


def test_description_is_omitted_when_empty(client):
    room = next(room for room in client.get("/api/v1/rooms").json() if room["id"] == GROUP)

    assert list(room) == ROOM_KEYS_WITHOUT_DESCRIPTION


def test_rooms_are_ordered_by_last_message_newest_first_and_rooms_without_messages_last(client):
    Room.objects.filter(pk__in=[GROUP, DIRECT]).delete()
    now = timezone.now()
    at = {step: now + timedelta(seconds=step) for step in range(10)}

    old = make_room(room_id="room-old", created_at=at[0])
    make_message(old, created_at=at[1])
    make_message(old, created_at=at[2])
    new = make_room(room_id="room-new", created_at=at[0])
    make_message(new, created_at=at[4])
    mid = make_room(room_id="room-mid", created_at=at[5])
    make_message(mid, created_at=at[3])
    make_room(room_id="room-empty-older", created_at=at[6])
    make_room(room_id="room-empty-newer", created_at=at[7])
    tie_b = make_room(room_id="room-tie-b", created_at=at[1])
    tie_a = make_room(room_id="room-tie-a", created_at=at[1])
    tie_c = make_room(room_id="room-tie-c", created_at=at[2])
    for room in (tie_b, tie_a, tie_c):
        make_message(room, created_at=at[8])

    ids = [room["id"] for room in client.get("/api/v1/rooms").json()]

    assert ids == [
        "room-tie-c",
        "room-tie-a",
        "room-tie-b",
        "room-new",
        "room-mid",
        "room-old",
        seed_room().id,
        "room-empty-newer",
        "room-empty-older",
    ]


def test_each_room_carries_its_full_history_oldest_first(client):
    room = Room.objects.get(pk=GROUP)
    first = make_message(room, content="first")
    second = make_message(room, sender_id="u-bob", content="second")

    listed = next(item for item in client.get("/api/v1/rooms").json() if item["id"] == GROUP)

    assert [message["id"] for message in listed["messages"]] == [first.message_id, second.message_id]


def test_no_rooms_is_an_empty_array(client):
    Room.objects.all().delete()

    assert client.get("/api/v1/rooms").json() == []


# --- create -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CREATE_PATHS)
def test_create_room_returns_the_presented_room_with_its_created_event_message(client, path):
    body = {
        "title": "  launch  ",
        "creator_id": ADMIN_ID,
        "member_ids": [" u-bob ", "", "u-carol", "u-bob", ADMIN_ID, "  "],
        "description": "  ship it  ",
    }

    response = post_json(client, path, body)

    assert response.status_code == 201
    room = response.json()
    assert list(room) == ROOM_KEYS
    assert ROOM_ID.match(room["id"])
    assert room["title"] == "launch"
    assert room["subtitle"] == "3 members"
    assert room["description"] == "ship it"
    assert room["members"] == room["participants"] == [ADMIN_ID, "u-bob", "u-carol"]
    assert room["is_direct"] is False
    [message] = room["messages"]
    assert list(message) == EVENT_MESSAGE_KEYS
    assert MESSAGE_ID.match(message["id"])
    assert message["sender_id"] == ADMIN_ID
    assert message["kind"] == "event"
    assert message["content"] == 'admin created the room "launch"'
    assert list(message["event"]) == ["key", "actor_id", "title"]
    assert message["event"] == {"key": "room_created", "actor_id": ADMIN_ID, "title": "launch"}
    assert message["mentions"] == []
    stored = Room.objects.get(pk=room["id"])
    assert (stored.title, stored.description, stored.is_direct) == ("launch", "ship it", False)


def test_a_room_with_only_its_creator_is_allowed(client):
    room = post_json(
        client, "/api/v1/rooms", {"title": "solo", "creator_id": "u-bob", "description": " \t "}
    ).json()

    assert room["members"] == ["u-bob"]
    assert room["subtitle"] == "1 member"
    assert "description" not in room, "a blank description is empty after trimming"


@pytest.mark.parametrize("member_ids", [ABSENT, [], None])
def test_participant_ids_are_used_when_member_ids_are_absent_or_empty(client, member_ids):
    body = {
        "title": "t",
        "creator_id": ADMIN_ID,
        "member_ids": member_ids,
        "participant_ids": ["u-dan", "u-bob"],
    }

    assert post_json(client, "/api/v1/rooms", body).json()["members"] == [ADMIN_ID, "u-dan", "u-bob"]


def test_participant_ids_are_ignored_when_member_ids_are_given(client):
    body = {"title": "t", "creator_id": ADMIN_ID, "member_ids": ["u-bob"], "participant_ids": ["u-nobody"]}

    assert post_json(client, "/api/v1/rooms", body).json()["members"] == [ADMIN_ID, "u-bob"]


def test_member_ids_of_only_blanks_are_given_so_participant_ids_are_ignored(client):
    """§6.3: the choice is made on the list as sent; its blanks are then skipped, leaving only the creator."""
    body = {"title": "t", "creator_id": ADMIN_ID, "member_ids": [" ", ""], "participant_ids": ["u-bob"]}

    response = post_json(client, "/api/v1/rooms", body)

    assert response.status_code == 201
    assert response.json()["members"] == [ADMIN_ID]


def test_created_rooms_are_stored_with_members_in_order(client):
    body = {"title": "t", "creator_id": "u-carol", "member_ids": ["u-dan", "u-bob"]}

    room_id = post_json(client, "/api/v1/rooms", body).json()["id"]

    memberships = RoomMember.objects.filter(room_id=room_id).order_by("position")
    assert [membership.user_id for membership in memberships] == ["u-carol", "u-dan", "u-bob"]


CREATE_BASE = {"title": "launch", "creator_id": ADMIN_ID, "member_ids": ["u-bob"], "description": "d"}
CREATE_CHECKS = [
    Check("title required", {"title": "  "}, 400, "title is required"),
    Check("creator_id required", {"creator_id": ""}, 400, "creator_id is required"),
    Check("title length", {"title": "t" * 201}, 400, "title must be at most 200 characters"),
    Check(
        "description length", {"description": "d" * 2001}, 400, "description must be at most 2000 characters"
    ),
    Check("creator unknown", {"creator_id": "u-nobody"}, 400, "creator not found"),
    Check(
        "member unknown", {"member_ids": ["u-bob", "u-nobody", "u-ghost"]}, 400, "user not found: u-nobody"
    ),
]


@pytest.mark.parametrize("with_later_defects", [False, True], ids=["alone", "before-later-checks"])
@pytest.mark.parametrize("index", range(len(CREATE_CHECKS)), ids=[check.name for check in CREATE_CHECKS])
def test_create_room_checks_in_order(client, index, with_later_defects):
    check = CREATE_CHECKS[index]
    before = row_counts()

    response = post_json(
        client,
        "/api/v1/rooms",
        failing_body(CREATE_BASE, CREATE_CHECKS, index, with_later_defects=with_later_defects),
    )

    assert (response.status_code, error_text(response)) == (check.status, check.text)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"title": ABSENT}, "title is required"),
        ({"creator_id": ABSENT}, "creator_id is required"),
        ({"creator_id": " "}, "creator not found"),
        ({"creator_id": f" {ADMIN_ID}"}, "creator not found"),
        ({"creator_id": f"{ADMIN_ID} "}, "creator not found"),
        ({"member_ids": [], "participant_ids": ["u-nobody"]}, "user not found: u-nobody"),
    ],
)
def test_create_room_check_variants(client, overrides, text):
    response = post_json(client, "/api/v1/rooms", {**CREATE_BASE, **overrides})

    assert (response.status_code, error_text(response)) == (400, text)


def test_create_room_decode_error_comes_first(client):
    response = post_json(client, "/api/v1/im/conversations", "{")

    assert response.status_code == 400
    assert error_text(response).startswith("decode request: ")


# --- event message texts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "accept_language", "content"),
    [
        (ABSENT, None, 'admin created the room "launch"'),
        ("zh", None, "admin 创建了房间“launch”"),
        ("ZH-tw", None, "admin 创建了房间“launch”"),
        ("  zh-CN ", None, "admin 创建了房间“launch”"),
        ("en", "zh-CN,zh;q=0.9", 'admin created the room "launch"'),
        ("fr", "zh", 'admin created the room "launch"'),
        ("  ", "zh-CN,en;q=0.8", "admin 创建了房间“launch”"),
        (ABSENT, "zh;q=0.9, en", "admin 创建了房间“launch”"),
        (ABSENT, "en-US,zh;q=0.9", 'admin created the room "launch"'),
        (ABSENT, "de", 'admin created the room "launch"'),
        (None, "zh-Hans", "admin 创建了房间“launch”"),
    ],
)
def test_room_created_text_follows_body_locale_then_accept_language_then_english(
    client, locale, accept_language, content
):
    headers = {"Accept-Language": accept_language} if accept_language else {}

    room = post_json(
        client, "/api/v1/rooms", {"title": "launch", "creator_id": ADMIN_ID, "locale": locale}, **headers
    )

    assert room.json()["messages"][0]["content"] == content


@pytest.mark.parametrize(
    ("locale", "content"),
    [
        ("en", "admin invited carol, dan to join the room"),
        ("zh-CN", "admin 邀请 carol、dan 加入了房间"),
    ],
)
def test_members_added_text_lists_every_added_person(client, locale, content):
    body = {"room_id": GROUP, "inviter_id": ADMIN_ID, "user_ids": ["u-carol", "u-dan"], "locale": locale}

    room = post_json(client, INVITE_PATHS[0], body).json()

    assert room["messages"][-1]["content"] == content


def test_people_are_shown_by_name_else_handle_else_id(client):
    make_user("u-nameless", name="", handle="ghost")
    make_user("u-bare", name="", handle="")
    room = post_json(client, "/api/v1/rooms", {"title": "t", "creator_id": "u-nameless"}).json()

    invited = post_json(
        client,
        INVITE_PATHS[0],
        {"room_id": room["id"], "inviter_id": "u-nameless", "user_ids": ["u-bare", "u-bob"]},
    ).json()

    assert invited["messages"][0]["content"] == '@ghost created the room "t"'
    assert invited["messages"][1]["content"] == "@ghost invited u-bare, bob to join the room"


def test_event_texts_are_rendered_once_at_creation(client):
    room_id = post_json(client, "/api/v1/rooms", {"title": "t", "creator_id": "u-bob"}).json()["id"]
    ChatUser.objects.filter(pk="u-bob").update(name="robert")

    assert (
        client.get("/api/v1/messages", {"room_id": room_id}).json()[0]["content"]
        == 'bob created the room "t"'
    )


# --- delete -----------------------------------------------------------------------------------------


def test_delete_room_removes_it_with_members_and_messages(client):
    group = Room.objects.get(pk=GROUP)
    make_message(group)
    direct_messages = Message.objects.filter(room_id=DIRECT).count()

    response = client.delete(f"/api/v1/rooms/{GROUP}")

    assert response.status_code == 204
    assert not Room.objects.filter(pk=GROUP).exists()
    assert not RoomMember.objects.filter(room_id=GROUP).exists()
    assert not Message.objects.filter(room_id=GROUP).exists()
    assert Message.objects.filter(room_id=DIRECT).count() == direct_messages
    assert ChatUser.objects.filter(pk="u-bob").exists()


def test_any_room_may_be_deleted_including_the_admin_manager_room(client):
    assert client.delete(f"/api/v1/rooms/{seed_room().id}").status_code == 204


def test_delete_room_checks_path_then_method_then_room(client):
    assert error_text(client.get("/api/v1/rooms/%20")) == "404 page not found"
    wrong_method = client.post(f"/api/v1/rooms/{GROUP}")
    unknown = client.delete("/api/v1/rooms/room-nope")

    assert (wrong_method.status_code, error_text(wrong_method)) == (405, "method not allowed")
    assert (unknown.status_code, error_text(unknown)) == (404, "room not found")
    assert error_text(client.get("/api/v1/rooms/room-nope")) == "method not allowed"


# --- members ----------------------------------------------------------------------------------------


def test_room_members_are_users_in_member_order(client):
    make_room(room_id="room-order", members=["u-dan", ADMIN_ID, "u-bob"])

    users = client.get("/api/v1/rooms/room-order/members").json()

    assert [user["id"] for user in users] == ["u-dan", ADMIN_ID, "u-bob"]
    assert all(list(user) == USER_KEYS for user in users)
    assert users[1] == {
        "id": ADMIN_ID,
        "name": "admin",
        "handle": "admin",
        "role": "admin",
        "avatar": "AD",
        "is_online": True,
        "accent_hex": "#dc2626",
        "created_at": users[1]["created_at"],
    }


def test_room_members_of_an_unknown_room_is_404(client):
    response = client.get("/api/v1/rooms/room-nope/members")

    assert (response.status_code, error_text(response)) == (404, "room not found")


def test_post_room_members_invites_into_the_path_room(client):
    response = post_json(
        client, f"/api/v1/rooms/{GROUP}/members", {"inviter_id": ADMIN_ID, "user_ids": ["u-dan"]}
    )

    assert response.status_code == 200
    assert response.json()["members"] == [ADMIN_ID, "u-bob", "u-dan"]


@pytest.mark.parametrize("body_room_id", [GROUP, f"  {GROUP} ", "", "  ", None])
def test_post_room_members_accepts_a_blank_or_matching_body_room_id(client, body_room_id):
    body = {"room_id": body_room_id, "inviter_id": ADMIN_ID, "user_ids": ["u-dan"]}

    assert post_json(client, f"/api/v1/rooms/{GROUP}/members", body).status_code == 200


def test_post_room_members_mismatch_is_checked_right_after_decoding(client):
    before = row_counts()
    mismatch = post_json(
        client, f"/api/v1/rooms/{GROUP}/members", {"room_id": DIRECT, "inviter_id": "", "user_ids": []}
    )
    undecodable = post_json(client, f"/api/v1/rooms/{GROUP}/members", "[")

    assert (mismatch.status_code, error_text(mismatch)) == (400, "room_id does not match path room id")
    assert error_text(undecodable).startswith("decode request: ")
    assert row_counts() == before


@pytest.mark.parametrize(
    ("path_room", "text"), [("room-nope", "room not found"), (DIRECT, "cannot add members to direct room")]
)
def test_post_room_members_answers_like_invite_for_the_path_room(client, path_room, text):
    response = post_json(
        client, f"/api/v1/rooms/{path_room}/members", {"inviter_id": ADMIN_ID, "user_ids": ["u-dan"]}
    )

    assert (response.status_code, error_text(response)) == (400, text)


# --- invite -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", INVITE_PATHS)
def test_invite_appends_new_members_in_request_order_with_an_event_message(client, path):
    body = {
        "room_id": f" {GROUP} ",
        "inviter_id": "u-bob",
        "user_ids": [" u-dan ", "", ADMIN_ID, "u-carol", "u-dan"],
    }

    response = post_json(client, path, body)

    assert response.status_code == 200
    room = response.json()
    assert list(room) == ROOM_KEYS_WITHOUT_DESCRIPTION
    assert room["members"] == room["participants"] == [ADMIN_ID, "u-bob", "u-dan", "u-carol"]
    assert room["subtitle"] == "4 members"
    message = room["messages"][-1]
    assert list(message) == EVENT_MESSAGE_KEYS
    assert message["sender_id"] == "u-bob"
    assert message["kind"] == "event"
    assert message["content"] == "bob invited dan, carol to join the room"
    assert list(message["event"]) == ["key", "actor_id", "target_ids"]
    assert message["event"] == {
        "key": "room_members_added",
        "actor_id": "u-bob",
        "target_ids": ["u-dan", "u-carol"],
    }
    assert message["mentions"] == ["u-dan", "u-carol"]


def test_later_invites_are_appended(client):
    post_json(client, INVITE_PATHS[1], {"room_id": GROUP, "inviter_id": ADMIN_ID, "user_ids": ["u-dan"]})
    room = post_json(
        client, INVITE_PATHS[1], {"room_id": GROUP, "inviter_id": "u-dan", "user_ids": ["u-carol"]}
    ).json()

    assert room["members"] == [ADMIN_ID, "u-bob", "u-dan", "u-carol"]
    assert [message["event"]["actor_id"] for message in room["messages"]] == [ADMIN_ID, "u-dan"]


INVITE_BASE = {"room_id": GROUP, "inviter_id": ADMIN_ID, "user_ids": ["u-carol"]}
INVITE_CHECKS = [
    Check("room_id required", {"room_id": "  "}, 400, "room_id is required"),
    Check("inviter_id required", {"inviter_id": ""}, 400, "inviter_id is required"),
    Check("user_ids required", {"user_ids": []}, 400, "user_ids is required"),
    Check("room unknown", {"room_id": "room-nope"}, 400, "room not found"),
    Check("inviter unknown", {"inviter_id": " "}, 400, "inviter not found"),
    Check("inviter not a member", {"inviter_id": "u-carol"}, 400, "inviter is not a room member"),
    Check("direct room", {"room_id": DIRECT}, 400, "cannot add members to direct room"),
    Check("user unknown", {"user_ids": ["u-carol", "u-nobody", "u-ghost"]}, 400, "user not found: u-nobody"),
    Check("nothing new", {"user_ids": ["u-bob", " ", ADMIN_ID]}, 400, "no new users to invite"),
]


@pytest.mark.parametrize("with_later_defects", [False, True], ids=["alone", "before-later-checks"])
@pytest.mark.parametrize("index", range(len(INVITE_CHECKS)), ids=[check.name for check in INVITE_CHECKS])
@pytest.mark.parametrize("path", INVITE_PATHS)
def test_invite_checks_in_order(client, path, index, with_later_defects):
    check = INVITE_CHECKS[index]
    before = row_counts()

    response = post_json(
        client, path, failing_body(INVITE_BASE, INVITE_CHECKS, index, with_later_defects=with_later_defects)
    )

    assert (response.status_code, error_text(response)) == (check.status, check.text)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"room_id": ABSENT}, "room_id is required"),
        ({"inviter_id": ABSENT}, "inviter_id is required"),
        ({"user_ids": ABSENT}, "user_ids is required"),
        ({"inviter_id": f" {ADMIN_ID}"}, "inviter not found"),
        ({"user_ids": ["", "  "]}, "no new users to invite"),
        ({"user_ids": [" u-bob "]}, "no new users to invite"),
    ],
)
def test_invite_check_variants(client, overrides, text):
    response = post_json(client, INVITE_PATHS[0], {**INVITE_BASE, **overrides})

    assert (response.status_code, error_text(response)) == (400, text)


# --- agent join -------------------------------------------------------------------------------------


@pytest.fixture
def dave():
    """An agent with no IM user or direct room yet."""
    return make_agent("u-dave", name="Dave")


def test_join_adds_the_agent_and_answers_with_a_plain_confirmation(client, dave):
    response = post_json(client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": f" {GROUP} "})

    assert response.status_code == 200
    assert list(response.json()) == ["message", "room_id", "agent_id"]
    assert response.json() == {"message": "agent joined successfully", "room_id": GROUP, "agent_id": "u-dave"}
    group = client.get("/api/v1/rooms").json()
    room = next(item for item in group if item["id"] == GROUP)
    assert room["members"] == [ADMIN_ID, "u-bob", "u-dave"]
    assert room["messages"][-1]["content"] == "admin invited dave to join the room"
    assert room["messages"][-1]["event"] == {
        "key": "room_members_added",
        "actor_id": ADMIN_ID,
        "target_ids": ["u-dave"],
    }


def test_join_ensures_the_agent_im_identity_and_emits_its_events(client, dave):
    mark = event_mark()

    post_json(client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": GROUP, "locale": "zh"})

    user = ChatUser.objects.get(pk="u-dave")
    assert (user.name, user.handle, user.role) == ("dave", "dave", "worker")
    assert event_types_after(mark) == ["user.created", "room.created", "room.members_added"]
    direct = events_after(mark)[1].payload["room"]
    assert direct["members"] == [ADMIN_ID, "u-dave"]
    assert direct["title"] == "dave"
    assert direct["messages"][0]["sender_id"] == "u-dave"
    assert Message.objects.filter(room_id=GROUP).last().content == "admin 邀请 dave 加入了房间"


def test_join_uses_the_given_inviter(client, dave):
    post_json(
        client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": GROUP, "inviter_id": "u-bob"}
    )

    assert Message.objects.filter(room_id=GROUP).last().event["actor_id"] == "u-bob"


def test_join_keeps_the_ensured_identity_when_a_later_check_fails(client, dave):
    mark = event_mark()

    response = post_json(client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": ""})

    assert (response.status_code, error_text(response)) == (400, "room_id is required")
    assert ChatUser.objects.filter(pk="u-dave").exists()
    assert event_types_after(mark) == ["user.created", "room.created"]


def test_join_ensures_the_identity_only_once(client, dave):
    post_json(client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": ""})
    mark = event_mark()

    post_json(client, "/api/v1/im/agents/join", {"agent_id": "u-dave", "room_id": GROUP})

    assert event_types_after(mark) == ["room.members_added"]


@pytest.fixture
def join_world(dave):
    make_agent("u-clash", name="bob")  # its handle "bob" belongs to another IM user
    make_agent("u-erin", name="erin")
    make_user("u-erin", name="erin")
    make_room(room_id="room-with-erin", members=[ADMIN_ID, "u-erin"])


JOIN_BASE = {"agent_id": "u-dave", "room_id": GROUP}
JOIN_CHECKS = [
    Check("agent unknown", {"agent_id": ""}, 404, "agent not found"),
    Check("identity", {"agent_id": "u-clash"}, 502, 'ensure agent im user: handle "bob" already exists'),
    Check("room_id required", {"room_id": " "}, 400, "room_id is required"),
    Check("room unknown", {"room_id": "room-nope"}, 400, "room not found"),
    Check("inviter unknown", {"inviter_id": "u-nobody"}, 400, "inviter not found"),
    Check("inviter not a member", {"inviter_id": "u-carol"}, 400, "inviter is not a room member"),
    Check("direct room", {"room_id": DIRECT}, 400, "cannot add members to direct room"),
    Check(
        "already a member", {"room_id": "room-with-erin", "agent_id": "u-erin"}, 400, "no new users to invite"
    ),
]


@pytest.mark.parametrize("with_later_defects", [False, True], ids=["alone", "before-later-checks"])
@pytest.mark.parametrize("index", range(len(JOIN_CHECKS)), ids=[check.name for check in JOIN_CHECKS])
def test_join_checks_in_order(client, join_world, index, with_later_defects):
    check = JOIN_CHECKS[index]
    members_before = list(RoomMember.objects.values_list("room_id", "user_id"))

    response = post_json(
        client,
        "/api/v1/im/agents/join",
        failing_body(JOIN_BASE, JOIN_CHECKS, index, with_later_defects=with_later_defects),
    )

    assert (response.status_code, error_text(response)) == (check.status, check.text)
    added = set(RoomMember.objects.values_list("room_id", "user_id")) - set(members_before)
    assert all(Room.objects.get(pk=room_id).is_direct for room_id, _ in added), "only the agent's direct room"


@pytest.mark.parametrize("agent_id", ["u-nobody", "  ", ABSENT, " u-dave-x"])
def test_join_unknown_agent_is_404(client, join_world, agent_id):
    before = row_counts()

    response = post_json(client, "/api/v1/im/agents/join", {**JOIN_BASE, "agent_id": agent_id})

    assert (response.status_code, error_text(response)) == (404, "agent not found")
    assert row_counts() == before


def test_join_identity_failure_writes_nothing(client, join_world):
    before = row_counts()

    post_json(client, "/api/v1/im/agents/join", {**JOIN_BASE, "agent_id": "u-clash"})

    assert row_counts() == before
    assert not Event.objects.filter(type="user.created").exists()
