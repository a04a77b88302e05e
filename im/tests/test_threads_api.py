"""Thread routes and REST replies (threads-attachments.md §1.3–§1.8), with their check orders and texts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from im.identity import ADMIN_ID
from im.models import Message, Room, Thread
from im.tests.factories import (
    error_text,
    event_mark,
    event_types_after,
    events_after,
    make_message,
    make_room,
    make_user,
    post_json,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

GROUP = "room-group"
PREFIXES = ("/api/v1/rooms", "/api/v1/channels/csgclaw/rooms")


@pytest.fixture(autouse=True)
def people():
    make_user("u-dev")
    make_room(room_id=GROUP, members=[ADMIN_ID, "u-dev"])


@pytest.fixture
def root() -> Message:
    return make_message(Room.objects.get(pk=GROUP), content="Plan the release")


def _reply(client, root_id: str, *, sender_id: str = ADMIN_ID, content: str = "On it", **fields):
    body = {
        "room_id": GROUP,
        "sender_id": sender_id,
        "content": content,
        "relates_to": {"rel_type": "m.thread", "event_id": root_id},
        **fields,
    }
    return post_json(client, "/api/v1/messages", body)


def _start(client, root_id: str, prefix: str = PREFIXES[0], room_id: str = GROUP):
    return post_json(client, f"{prefix}/{room_id}/threads", {"root_message_id": root_id})


# --- replies on the send routes --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/im/messages"])
def test_a_reply_is_hidden_from_the_timeline_and_counted_on_its_root(client, root, path):
    body = {
        "room_id": GROUP,
        "sender_id": "u-dev",
        "content": "On it",
        "relates_to": {"rel_type": " m.thread ", "event_id": f" {root.message_id} "},
        "metadata": {"k": 1},
    }
    response = post_json(client, path, body)
    assert response.status_code == 201, response.content
    reply = response.json()
    assert reply["relates_to"] == {"rel_type": "m.thread", "event_id": root.message_id}
    assert reply["metadata"] == {"k": 1}
    assert "thread" not in reply
    assert Message.objects.get(message_id=reply["id"]).thread_root_id == root.message_id

    listed = client.get("/api/v1/messages", {"room_id": GROUP}).json()
    assert [message["id"] for message in listed] == [root.message_id]
    summary = listed[0]["thread"]
    assert summary["reply_count"] == 1
    assert summary["latest_reply"]["id"] == reply["id"]
    assert "thread" not in summary["latest_reply"]
    assert summary["participants"] == [{"id": ADMIN_ID, "name": "admin"}, {"id": "u-dev", "name": "dev"}]
    assert summary["current_user_participated"] is True
    assert summary["context_summary"] == {
        "root_excerpt": "Plan the release",
        "message_count": 1,
        "before_count": 0,
        "after_count": 0,
    }

    with_replies = client.get("/api/v1/messages", {"room_id": GROUP, "include_thread_replies": " YES "})
    assert [message["id"] for message in with_replies.json()] == [root.message_id, reply["id"]]
    for other in ("no", "2", ""):
        listed = client.get("/api/v1/messages", {"room_id": GROUP, "include_thread_replies": other}).json()
        assert len(listed) == 1

    bootstrap = client.get("/api/v1/bootstrap").json()
    room = next(room for room in bootstrap["rooms"] if room["id"] == GROUP)
    assert [message["id"] for message in room["messages"]] == [root.message_id]
    assert room["messages"][0]["thread"]["reply_count"] == 1


def test_a_message_without_a_thread_state_has_no_thread_key_and_no_empty_metadata(client, root):
    response = post_json(
        client, "/api/v1/messages", {"room_id": GROUP, "sender_id": ADMIN_ID, "content": "x", "metadata": {}}
    )
    assert response.status_code == 201
    assert "metadata" not in response.json()
    assert "relates_to" not in response.json()
    assert all("thread" not in m for m in client.get("/api/v1/messages", {"room_id": GROUP}).json())


@pytest.mark.parametrize("relates_to", [None, {}, {"rel_type": " ", "event_id": ""}])
def test_a_null_or_blank_relation_is_top_level(client, relates_to):
    response = _reply(client, "", relates_to=relates_to)
    assert response.status_code == 201
    assert "relates_to" not in response.json()


def test_relation_errors_in_order_after_room_not_found(client, root):
    reply = make_message(Room.objects.get(pk=GROUP), content="r")
    Message.objects.filter(pk=reply.pk).update(thread_root_id=root.message_id)
    cases = [
        ({"room_id": "room-nope", "relates_to": {"rel_type": "x", "event_id": ""}}, "room not found"),
        ({"relates_to": {"rel_type": "m.reference", "event_id": ""}}, "unsupported relation type"),
        ({"relates_to": {"rel_type": "", "event_id": root.message_id}}, "unsupported relation type"),
        ({"relates_to": {"rel_type": "m.thread", "event_id": " "}}, "relation event_id is required"),
        ({"relates_to": {"rel_type": "m.thread", "event_id": "msg-nope"}}, "thread root message not found"),
        (
            {
                "relates_to": {"rel_type": "m.thread", "event_id": reply.message_id},
                "client_msg_id": "x" * 200,
            },
            "cannot reply to a thread reply",
        ),
    ]
    for fields, text in cases:
        body = {"room_id": GROUP, "sender_id": ADMIN_ID, "content": "hi", **fields}
        response = post_json(client, "/api/v1/messages", body)
        assert (response.status_code, error_text(response)) == (400, text), fields
    other_room = make_room(room_id="room-other", members=[ADMIN_ID, "u-dev"])
    foreign = make_message(other_room)
    response = _reply(client, foreign.message_id)
    assert error_text(response) == "thread root message not found"


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"relates_to": "x"}, 'decode request: field "relates_to" must be an object'),
        ({"relates_to": []}, 'decode request: field "relates_to" must be an object'),
        ({"metadata": "x"}, 'decode request: field "metadata" must be an object'),
        ({"relates_to": {"rel_type": 1}}, 'decode request: field "rel_type" must be a string'),
        (
            {"relates_to": {"rel_type": "m.thread", "event_id": 2}},
            'decode request: field "rel_type" must be a string'.replace("rel_type", "event_id"),
        ),
    ],
)
def test_relation_and_metadata_type_errors(client, fields, text):
    body = {"room_id": GROUP, "sender_id": ADMIN_ID, "content": "hi", **fields}
    response = post_json(client, "/api/v1/messages", body)
    assert (response.status_code, error_text(response)) == (400, text)


def test_a_first_reply_emits_message_created_then_thread_updated_and_no_thread_created(client, root):
    mark = event_mark()
    reply = _reply(client, root.message_id).json()
    assert event_types_after(mark) == ["message.created", "thread.updated"]
    updated = events_after(mark)[1].payload
    assert list(updated) == ["type", "room_id", "thread"]
    assert updated["room_id"] == GROUP
    view = updated["thread"]
    assert list(view) == ["room_id", "root", "context", "replies", "summary"]
    assert [message["id"] for message in view["replies"]] == [reply["id"]]
    assert view["root"]["thread"] == view["summary"]
    assert Thread.objects.filter(room_id=GROUP, root_message_id=root.message_id).count() == 1

    mark = event_mark()
    _reply(client, root.message_id)
    assert event_types_after(mark) == ["message.created", "thread.updated"]
    assert Thread.objects.count() == 1


def test_a_repeated_client_msg_id_returns_the_stored_reply_and_writes_nothing(client, root):
    first = _reply(client, root.message_id, client_msg_id="c1")
    mark = event_mark()
    again = _reply(client, root.message_id, client_msg_id="c1")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert event_types_after(mark) == []


# --- start ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_start_creates_once_then_is_idempotent(client, root, prefix):
    mark = event_mark()
    created = _start(client, root.message_id, prefix)
    assert created.status_code == 201, created.content
    view = created.json()
    assert list(view) == ["room_id", "root", "context", "replies", "summary"]
    assert view["replies"] == []
    assert view["summary"]["reply_count"] == 0
    assert "latest_reply" not in view["summary"]
    assert event_types_after(mark) == ["thread.created"]
    assert events_after(mark)[0].payload == {"type": "thread.created", "room_id": GROUP, "thread": view}

    mark = event_mark()
    again = _start(client, f" {root.message_id} ", prefix)
    assert (again.status_code, again.json()) == (200, view)
    assert event_types_after(mark) == []


def test_start_checks_in_order(client, root):
    reply = _reply(client, root.message_id).json()
    url = f"/api/v1/rooms/{GROUP}/threads"
    assert client.put(url).status_code == 405
    assert error_text(post_json(client, url, "[]")).startswith("decode request: ")
    assert error_text(post_json(client, url, {"root_message_id": 1})) == (
        'decode request: field "root_message_id" must be a string'
    )
    cases = [
        (url, {"root_message_id": " "}, 400, "root_message_id is required"),
        ("/api/v1/rooms/room-nope/threads", {"root_message_id": "msg-nope"}, 404, "room not found"),
        (url, {"root_message_id": "msg-nope"}, 404, "root message not found"),
        (url, {"root_message_id": reply["id"]}, 400, "cannot start a thread from a thread reply"),
    ]
    for path, body, status, text in cases:
        response = post_json(client, path, body)
        assert (response.status_code, error_text(response)) == (status, text), body
    response = post_json(client, url, {"root_message_id": root.message_id, "room_id": "room-ignored"})
    assert response.json()["room_id"] == GROUP


# --- snapshot ---------------------------------------------------------------------------------------


def test_snapshot_window_keeps_five_before_and_two_after(client):
    room = Room.objects.get(pk=GROUP)
    older = [make_message(room, content=f"old {index}") for index in range(7)]
    root = make_message(room, content="root")
    newer = [make_message(room, content=f"new {index}") for index in range(4)]
    view = _start(client, root.message_id).json()
    assert view["summary"]["context_summary"] == {
        "root_excerpt": "root",
        "message_count": 8,
        "before_count": 5,
        "after_count": 2,
    }
    expected = [*older[2:], root, *newer[:2]]
    assert [message["id"] for message in view["context"]] == [message.message_id for message in expected]


def test_snapshot_drops_a_40_kb_neighbour(client):
    room = Room.objects.get(pk=GROUP)
    make_message(room, content="x" * 40_000)
    kept_before = [make_message(room, content=f"small {index}") for index in range(2)]
    root = make_message(room, content="root")
    after = make_message(room, content="after")
    view = _start(client, root.message_id).json()
    expected = [*kept_before, root, after]
    assert [message["id"] for message in view["context"]] == [message.message_id for message in expected]
    assert view["summary"]["context_summary"]["before_count"] == 2
    assert view["summary"]["context_summary"]["after_count"] == 1


def test_snapshot_cap_drops_later_messages_first_on_a_tie(client):
    room = Room.objects.get(pk=GROUP)
    make_message(room, content="x" * 40_000)
    root = make_message(room, content="root")
    make_message(room, content="after")
    view = _start(client, root.message_id).json()
    assert [message["id"] for message in view["context"]] == [root.message_id]
    assert view["summary"]["context_summary"]["message_count"] == 1


def test_code_fence_excerpt(client):
    room = Room.objects.get(pk=GROUP)
    root = make_message(room, content="```python\nprint(1)\n```")
    view = _start(client, root.message_id).json()
    assert view["summary"]["context_summary"]["root_excerpt"] == "print(1)"


# --- list -------------------------------------------------------------------------------------------


def test_list_orders_by_latest_reply_filters_and_pages(client):
    room = Room.objects.get(pk=GROUP)
    now = timezone.now()
    mine = make_message(room, content="mine", created_at=now - timedelta(minutes=10))
    theirs = make_message(room, sender_id="u-dev", content="theirs", created_at=now - timedelta(minutes=5))
    _start(client, mine.message_id)
    _start(client, theirs.message_id)
    url = f"/api/v1/rooms/{GROUP}/threads"
    listed = client.get(url).json()
    assert [view["root"]["id"] for view in listed["threads"]] == [theirs.message_id, mine.message_id]
    assert "next_from" not in listed
    assert all("context" not in view for view in listed["threads"])

    _reply(client, mine.message_id, sender_id="u-dev")
    listed = client.get(url).json()
    assert [view["root"]["id"] for view in listed["threads"]] == [mine.message_id, theirs.message_id]

    participated = client.get(url, {"include": " Participated "}).json()
    assert [view["root"]["id"] for view in participated["threads"]] == [mine.message_id]

    page = client.get(url, {"limit": "1"}).json()
    assert [view["root"]["id"] for view in page["threads"]] == [mine.message_id]
    assert page["next_from"] == "1"
    second = client.get(url, {"limit": "1", "from": "1"}).json()
    assert [view["root"]["id"] for view in second["threads"]] == [theirs.message_id]
    assert "next_from" not in second
    assert client.get(url, {"from": "9"}).json() == {"threads": []}
    assert client.get(f"{PREFIXES[1]}/{GROUP}/threads", {"limit": "0"}).json() == listed


def test_list_skips_threads_whose_root_is_gone(client, root):
    _start(client, root.message_id)
    Message.objects.filter(pk=root.pk).delete()
    assert client.get(f"/api/v1/rooms/{GROUP}/threads").json() == {"threads": []}


def test_list_checks_in_order(client):
    url = f"/api/v1/rooms/{GROUP}/threads"
    cases = [
        (
            "/api/v1/rooms/room-nope/threads",
            {"limit": "x", "from": "y", "include": "mine"},
            400,
            "invalid limit",
        ),
        (url, {"limit": "-1"}, 400, "invalid limit"),
        (url, {"from": "1.5", "include": "mine"}, 400, "invalid from"),
        ("/api/v1/rooms/room-nope/threads", {"include": "mine"}, 400, "invalid include"),
        ("/api/v1/rooms/room-nope/threads", {"include": "ALL"}, 404, "room not found"),
    ]
    for path, query, status, text in cases:
        response = client.get(path, query)
        assert (response.status_code, error_text(response)) == (status, text), query


# --- get and relations ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_and_relations(client, root, prefix):
    reply = _reply(client, root.message_id).json()
    view = client.get(f"{prefix}/{GROUP}/threads/{root.message_id}").json()
    assert list(view) == ["room_id", "root", "context", "replies", "summary"]
    assert view["replies"] == [reply]
    relations = client.get(f"{prefix}/{GROUP}/relations/{root.message_id}/m.thread")
    assert relations.status_code == 200
    assert relations.json() == {"chunk": view["replies"]}


def test_get_checks_in_order(client, root):
    reply = _reply(client, root.message_id).json()
    plain = make_message(Room.objects.get(pk=GROUP), content="no thread")
    cases = [
        (f"/api/v1/rooms/room-nope/threads/{root.message_id}", 404, "room not found"),
        (f"/api/v1/rooms/{GROUP}/threads/msg-nope", 404, "thread root message not found"),
        (f"/api/v1/rooms/{GROUP}/threads/{reply['id']}", 400, "thread root message is a thread reply"),
        (f"/api/v1/rooms/{GROUP}/threads/{plain.message_id}", 404, "thread not found"),
        (f"/api/v1/rooms/{GROUP}/relations/{plain.message_id}/m.thread", 404, "thread not found"),
        (f"/api/v1/rooms/{GROUP}/relations/{root.message_id}/m.reference", 404, "404 page not found"),
    ]
    for path, status, text in cases:
        response = client.get(path)
        assert (response.status_code, error_text(response)) == (status, text), path
    assert client.post(f"/api/v1/rooms/{GROUP}/threads/{root.message_id}").status_code == 405
    assert client.delete(f"/api/v1/rooms/{GROUP}/relations/{root.message_id}/m.thread").status_code == 405
    relations = client.get(f"/api/v1/rooms/{GROUP}/relations/{root.message_id}/m.thread").json()
    assert relations == {"chunk": [reply]}


def test_a_root_without_replies_has_an_empty_chunk(client, root):
    _start(client, root.message_id)
    assert client.get(f"/api/v1/rooms/{GROUP}/relations/{root.message_id}/m.thread").json() == {"chunk": []}


# --- cascades ---------------------------------------------------------------------------------------


def test_deleting_the_root_sender_removes_that_thread_and_rebuilds_the_others(client):
    room = Room.objects.get(pk=GROUP)
    make_user("u-ops")
    Room.objects.get(pk=GROUP).memberships.create(user_id="u-ops", position=9)
    ops_root = make_message(room, sender_id="u-ops", content="ops root")
    admin_root = make_message(room, content="admin root")
    _start(client, ops_root.message_id)
    _start(client, admin_root.message_id)
    _reply(client, ops_root.message_id)
    before = Thread.objects.get(root_message_id=admin_root.message_id)
    assert before.summary["before_count"] == 1

    mark = event_mark()
    assert client.delete("/api/v1/users/u-ops").status_code == 204
    assert event_types_after(mark) == ["user.deleted"]
    after = Thread.objects.get(root_message_id=admin_root.message_id)
    assert not Thread.objects.filter(root_message_id=ops_root.message_id).exists()
    assert after.summary["before_count"] == 0
    assert after.created_at == before.created_at
    listed = client.get("/api/v1/messages", {"room_id": GROUP, "include_thread_replies": "1"}).json()
    assert [message["content"] for message in listed] == ["admin root", "On it"]


def test_deleting_a_room_deletes_its_threads(client, root):
    _start(client, root.message_id)
    assert client.delete(f"/api/v1/rooms/{GROUP}").status_code == 204
    assert Thread.objects.count() == 0


def test_room_order_uses_the_newest_top_level_message(client):
    old = make_room(room_id="room-old", members=[ADMIN_ID, "u-dev"])
    now = timezone.now()
    old_root = make_message(old, content="old", created_at=now - timedelta(hours=2))
    make_message(Room.objects.get(pk=GROUP), content="newer", created_at=now - timedelta(hours=1))
    _reply(client, old_root.message_id, room_id="room-old")
    ordered = [room["id"] for room in client.get("/api/v1/rooms").json()]
    assert [room_id for room_id in ordered if room_id in (GROUP, "room-old")] == [GROUP, "room-old"]
