"""Hostile and malformed input on the IM POST routes: the spec's 4xx text, never a 500 or a half-write."""

from __future__ import annotations

import json

import pytest

from im.identity import ADMIN_ID
from im.models import ChatUser, Message, Room
from im.tests.factories import (
    error_text,
    make_agent,
    make_room,
    make_user,
    post_json,
    row_counts,
    seed_room,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

GROUP = "room-group"
LONG_ID = "u-" + "x" * 127  # 129 characters: longer than any id can be

CREATE = ("/api/v1/im/conversations", "/api/v1/im/rooms", "/api/v1/rooms")
INVITE = ("/api/v1/im/conversations/members", "/api/v1/rooms/invite", "/api/v1/im/rooms/invite")
MEMBERS = f"/api/v1/rooms/{GROUP}/members"
SEND = ("/api/v1/im/messages", "/api/v1/messages")
JOIN = "/api/v1/im/agents/join"

VALID_CREATE = {"title": "launch", "creator_id": ADMIN_ID, "member_ids": ["u-bob"]}
VALID_INVITE = {"room_id": GROUP, "inviter_id": ADMIN_ID, "user_ids": ["u-carol"]}
VALID_MEMBERS = {"inviter_id": ADMIN_ID, "user_ids": ["u-carol"]}
VALID_SEND = {"room_id": GROUP, "sender_id": ADMIN_ID, "content": "hi"}
VALID_JOIN = {"agent_id": "u-dave", "room_id": GROUP}

# path → (a body that succeeds, its string fields, its string-array fields)
ROUTES = {
    **{
        path: (
            VALID_CREATE,
            ("title", "creator_id", "description", "locale"),
            ("member_ids", "participant_ids"),
        )
        for path in CREATE
    },
    **{path: (VALID_INVITE, ("room_id", "inviter_id", "locale"), ("user_ids",)) for path in INVITE},
    MEMBERS: (VALID_MEMBERS, ("room_id", "inviter_id", "locale"), ("user_ids",)),
    **{
        path: (VALID_SEND, ("room_id", "sender_id", "content", "mention_id", "client_msg_id"), ())
        for path in SEND
    },
    JOIN: (VALID_JOIN, ("agent_id", "room_id", "inviter_id", "locale"), ()),
}
# Aliases share one view, so the decoding matrix runs once per view; every alias is covered above and by
# the endpoint tests.
ONE_PATH_PER_VIEW = (CREATE[0], INVITE[0], MEMBERS, SEND[0], JOIN)
STRING_FIELDS = [(path, name) for path in ONE_PATH_PER_VIEW for name in ROUTES[path][1]]
LIST_FIELDS = [(path, name) for path in ONE_PATH_PER_VIEW for name in ROUTES[path][2]]


@pytest.fixture(autouse=True)
def world():
    """Users bob and carol, a group room of admin and bob, and an agent dave without an IM user yet."""
    make_user("u-bob")
    make_user("u-carol")
    make_room(room_id=GROUP, members=[ADMIN_ID, "u-bob"])
    make_agent("u-dave")


def _assert_rejected(response, status: int, text: str, before: dict[str, int]) -> None:
    assert response.status_code == status, response.content
    assert error_text(response) == text
    assert row_counts() == before


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_the_valid_bodies_used_here_do_succeed(client, path):
    assert post_json(client, path, ROUTES[path][0]).status_code in (200, 201)


# --- decoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize("body", ["", " ", "\r\n\t ", "\ufeff"])
def test_an_empty_body_is_eof(client, path, body):
    before = row_counts()

    _assert_rejected(post_json(client, path, body), 400, "decode request: EOF", before)


INVALID_JSON = [
    "{",
    "}",
    "nope",
    "{'title': 'x'}",
    '{"title": "x",}',
    '{"title": "unterminated}',
    "NaN",
    '{"n": NaN}',
    '{"n": Infinity}',
    '{"n": -Infinity}',
    '{"n": 1e400}',
    '{"n": -1e400}',
    '{"n": 1' + "0" * 400 + "}",
    '{"n": 1' + "0" * 5000 + "}",
    '{"n": 2' + "0" * 308 + "}",
    '{"n": -2' + "0" * 308 + "}",
    "{} {}",
    '{"title": "x"} trailing',
    "{}]",
    '{"n": 01}',
    '{"n": .5}',
    '{"s": "tab\tinside"}',
    "[" * 100_000,
    '{"a":' + "[" * 600 + "]" * 600 + "}",
    '{"a":' + '{"b":' * 900 + "1" + "}" * 900 + "}",
]


@pytest.mark.parametrize("path", ONE_PATH_PER_VIEW)
@pytest.mark.parametrize("body", INVALID_JSON, ids=lambda body: body[:24])
def test_invalid_json_is_a_decode_error_never_a_500(client, path, body):
    before = row_counts()

    response = post_json(client, path, body)

    assert response.status_code == 400, response.content
    assert error_text(response).startswith("decode request: ")
    assert row_counts() == before


@pytest.mark.parametrize(
    "number", ["1" + "0" * 308, "-1" + "0" * 308, "1.7976931348623157e308", "1e-400", "-0", "0.5e+3"]
)
def test_numbers_that_fit_a_double_are_fine_in_unknown_fields(client, number):
    body = f'{{"room_id":"{GROUP}","sender_id":"u-admin","content":"hi","n":{number}}}'

    assert post_json(client, SEND[0], body).status_code == 201


def test_nesting_is_accepted_up_to_512_levels(client):
    def body(depth: int) -> str:  # the top-level object is one level
        nested = "[" * (depth - 1) + "]" * (depth - 1)
        return f'{{"room_id":"{GROUP}","sender_id":"u-admin","content":"[[[{{{{","extra":{nested}}}'

    deepest = post_json(client, SEND[0], body(512))
    too_deep = post_json(client, SEND[0], body(513))

    assert deepest.status_code == 201
    assert deepest.json()["content"] == "[[[{{", "brackets inside strings do not count"
    assert (too_deep.status_code, error_text(too_deep)) == (400, "decode request: exceeded max depth")


def test_an_enormous_number_is_not_echoed_back_in_full(client):
    response = post_json(client, SEND[0], '{"n": ' + "9" * 500_000 + "}")

    assert response.status_code == 400
    assert error_text(response).startswith("decode request: ")
    assert len(response.content) < 200


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize(
    "body", ["[]", "[{}]", '"text"', "1", "-2.5", "true", "null", json.dumps([VALID_SEND])]
)
def test_a_top_level_that_is_not_an_object_is_rejected(client, path, body):
    before = row_counts()

    _assert_rejected(post_json(client, path, body), 400, "decode request: body must be a JSON object", before)


@pytest.mark.parametrize(("path", "field"), STRING_FIELDS)
@pytest.mark.parametrize("value", [1, 0, 1.5, True, False, {}, {"$gt": ""}, [], ["x"]], ids=repr)
def test_a_string_field_of_another_type_is_rejected(client, path, field, value):
    before = row_counts()
    body = {**ROUTES[path][0], field: value}

    _assert_rejected(
        post_json(client, path, body), 400, f'decode request: field "{field}" must be a string', before
    )


@pytest.mark.parametrize(("path", "field"), LIST_FIELDS)
@pytest.mark.parametrize(
    "value", ["u-bob", "", 1, True, {}, [1], ["u-bob", 2], [["u-bob"]], [{}], [True]], ids=repr
)
def test_a_string_array_field_of_another_type_is_rejected(client, path, field, value):
    before = row_counts()
    body = {**ROUTES[path][0], field: value}

    _assert_rejected(
        post_json(client, path, body),
        400,
        f'decode request: field "{field}" must be an array of strings',
        before,
    )


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_unknown_fields_are_ignored_whatever_their_type(client, path):
    body = {**ROUTES[path][0], "extra": {"nested": [1, None, True]}, "kind": 5, "conversation_id": []}

    assert post_json(client, path, body).status_code in (200, 201)


def test_null_means_absent(client):
    sent = post_json(
        client, "/api/v1/messages", {**VALID_SEND, "mention_id": None, "client_msg_id": None, "locale": None}
    )
    created = post_json(
        client,
        "/api/v1/rooms",
        {
            "title": "t",
            "creator_id": ADMIN_ID,
            "member_ids": None,
            "participant_ids": ["u-bob"],
            "description": None,
        },
    )
    untitled = post_json(client, "/api/v1/rooms", {**VALID_CREATE, "title": None})

    assert sent.status_code == 201
    assert "client_msg_id" not in sent.json()
    assert sent.json()["content"] == "hi"
    assert created.status_code == 201
    assert created.json()["members"] == [ADMIN_ID, "u-bob"]
    assert "description" not in created.json()
    assert untitled.status_code == 400
    assert error_text(untitled) == "title is required"


def test_a_null_array_element_counts_as_an_empty_string(client):
    invited = post_json(client, INVITE[0], {**VALID_INVITE, "user_ids": [None, "u-carol", None]})
    nothing_left = post_json(client, INVITE[0], {**VALID_INVITE, "user_ids": [None]})
    created = post_json(client, "/api/v1/rooms", {**VALID_CREATE, "member_ids": [None, "u-bob"]})

    assert invited.status_code == 200
    assert invited.json()["members"] == [ADMIN_ID, "u-bob", "u-carol"]
    assert nothing_left.status_code == 400
    assert error_text(nothing_left) == "no new users to invite"
    assert created.json()["members"] == [ADMIN_ID, "u-bob"]


# --- characters -------------------------------------------------------------------------------------


def _send_raw(client, raw: bytes):
    return client.post("/api/v1/messages", data=raw, content_type="application/x-www-form-urlencoded")


def _stored_content(response) -> str:
    assert response.status_code == 201, response.content
    stored = Message.objects.get(message_id=response.json()["id"]).content
    assert response.json()["content"] == stored
    return stored


def test_a_leading_byte_order_mark_is_skipped(client):
    raw = b"\xef\xbb\xbf" + json.dumps(VALID_SEND).encode()

    assert _stored_content(_send_raw(client, raw)) == "hi"


@pytest.mark.parametrize(
    ("raw_content", "stored"),
    [
        (b"a\xffb", "a\ufffdb"),
        (b"a\xc3b", "a\ufffdb"),
        (b"\xed\xa0\x80x", "\ufffd\ufffd\ufffdx"),
        (b"ok \xe5\xbc\xa0", "ok 张"),
    ],
)
def test_invalid_utf8_becomes_replacement_characters(client, raw_content, stored):
    raw = b'{"room_id":"' + GROUP.encode() + b'","sender_id":"u-admin","content":"' + raw_content + b'"}'

    assert _stored_content(_send_raw(client, raw)) == stored


@pytest.mark.parametrize(
    ("escaped", "stored"),
    [
        ("a\\ud800b", "a\ufffdb"),
        ("a\\udc00b", "a\ufffdb"),
        ("\\ud800\\ud800", "\ufffd\ufffd"),
        ("a\\u0000b", "a\ufffdb"),
        ("\\ud83d\\ude00 smile", "\U0001f600 smile"),
    ],
)
def test_unpaired_surrogates_and_nul_become_replacement_characters(client, escaped, stored):
    raw = f'{{"room_id":"{GROUP}","sender_id":"u-admin","content":"{escaped}"}}'

    response = post_json(client, "/api/v1/messages", raw)

    assert _stored_content(response) == stored
    listed = client.get("/api/v1/messages", {"room_id": GROUP}).json()
    assert listed[-1]["content"] == stored


def test_nul_becomes_replacement_character_in_titles_descriptions_and_ids(client):
    make_user("u-nul\ufffd")
    body = {"title": "a\x00b", "creator_id": ADMIN_ID, "description": "c\x00d", "member_ids": ["u-nul\x00"]}

    response = post_json(client, "/api/v1/rooms", body)

    assert response.status_code == 201
    room = Room.objects.get(pk=response.json()["id"])
    assert (room.title, room.description) == ("a\ufffdb", "c\ufffdd")
    assert response.json()["members"] == [ADMIN_ID, "u-nul\ufffd"]


def test_other_control_characters_are_kept_verbatim(client):
    content = "a\x01b\x07c\x1bd\x1fe\x7ff\x85g\tline\nnext\u2028end"

    response = post_json(client, "/api/v1/messages", {**VALID_SEND, "content": content})

    assert _stored_content(response) == content


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script>",
        '<img src=x onerror="alert(1)">',
        "'; DROP TABLE im_user; --",
        "Robert'); DELETE FROM im_message WHERE ('1'='1",
        "%s %(x)s %%",
        "{{ 7*7 }} {% now 'Y' %}",
        "\\x00 \\u0000 literal backslashes",
        "&lt;at user_id=&quot;u-bob&quot;&gt;",
    ],
)
def test_html_and_sql_looking_text_is_stored_and_returned_verbatim(client, text):
    sent = post_json(client, "/api/v1/messages", {**VALID_SEND, "content": text})
    created = post_json(client, "/api/v1/rooms", {**VALID_CREATE, "title": text, "description": text})

    assert _stored_content(sent) == text
    assert created.status_code == 201
    assert created.json()["title"] == text
    assert created.json()["description"] == text
    assert ChatUser.objects.filter(pk=ADMIN_ID).exists()
    assert client.get("/api/v1/messages", {"room_id": GROUP}).json()[-1]["content"] == text


def test_a_huge_message_is_limited_only_by_the_body_size(client):
    content = "y" * 900_000

    assert (
        _stored_content(post_json(client, "/api/v1/messages", {**VALID_SEND, "content": content})) == content
    )


# --- length limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), [("title", 200), ("description", 2000)])
def test_room_text_at_the_limit_is_accepted_and_one_over_is_rejected(client, field, limit):
    before = row_counts()
    too_long = post_json(client, "/api/v1/rooms", {**VALID_CREATE, field: "张" * (limit + 1)})
    assert row_counts() == before

    at_limit = post_json(client, "/api/v1/rooms", {**VALID_CREATE, field: "张" * limit})
    padded = post_json(client, "/api/v1/rooms", {**VALID_CREATE, field: "  " + "z" * limit + "  "})

    assert too_long.status_code == 400
    assert error_text(too_long) == f"{field} must be at most {limit} characters"
    assert at_limit.status_code == 201
    assert padded.status_code == 201, "the limit applies to the trimmed value"


def test_client_msg_id_at_the_limit_is_accepted_and_one_over_is_rejected(client):
    before = row_counts()
    too_long = post_json(client, "/api/v1/messages", {**VALID_SEND, "client_msg_id": "k" * 129})
    assert row_counts() == before

    at_limit = post_json(client, "/api/v1/messages", {**VALID_SEND, "client_msg_id": "k" * 128})

    assert too_long.status_code == 400
    assert error_text(too_long) == "client_msg_id must be at most 128 characters"
    assert at_limit.status_code == 201
    assert at_limit.json()["client_msg_id"] == "k" * 128


def test_ids_of_exactly_128_characters_are_looked_up(client):
    longest = "u-" + "x" * 126
    make_user(longest, name="longest")

    response = post_json(client, "/api/v1/messages", {**VALID_SEND, "sender_id": longest})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("path", "overrides", "status", "text"),
    [
        ("/api/v1/rooms", {"creator_id": LONG_ID}, 400, "creator not found"),
        ("/api/v1/rooms", {"member_ids": ["u-bob", LONG_ID]}, 400, f"user not found: {LONG_ID}"),
        (
            "/api/v1/rooms",
            {"member_ids": [], "participant_ids": [LONG_ID]},
            400,
            f"user not found: {LONG_ID}",
        ),
        (INVITE[0], {"room_id": "room-" + "9" * 124}, 400, "room not found"),
        (INVITE[0], {"inviter_id": LONG_ID}, 400, "inviter not found"),
        (INVITE[0], {"user_ids": [LONG_ID]}, 400, f"user not found: {LONG_ID}"),
        ("/api/v1/messages", {"sender_id": LONG_ID}, 400, "sender not found"),
        ("/api/v1/messages", {"mention_id": LONG_ID}, 400, "mentioned user not found"),
        ("/api/v1/messages", {"room_id": "room-" + "9" * 124}, 400, "room not found"),
        (JOIN, {"agent_id": LONG_ID}, 404, "agent not found"),
        (JOIN, {"inviter_id": LONG_ID}, 400, "inviter not found"),
    ],
)
def test_lookup_ids_over_128_characters_are_unknown_even_if_such_a_row_exists(
    client, path, overrides, status, text
):
    # SQLite does not enforce column lengths, so these rows can exist; the server must still never match them.
    make_user(LONG_ID, name="long")
    make_room(room_id="room-" + "9" * 124, members=[ADMIN_ID])
    make_agent(LONG_ID, name="longagent")
    before = row_counts()
    base = {**ROUTES[path][0]}

    response = post_json(client, path, {**base, **overrides})

    assert response.status_code == status, response.content
    assert error_text(response) == text
    if path != JOIN:  # the join ensures the agent's IM identity before its later checks (§6.11 step 3)
        assert row_counts() == before


@pytest.mark.parametrize(
    ("method", "path", "text"),
    [
        ("delete", "/api/v1/rooms/room-" + "9" * 124, "room not found"),
        ("get", "/api/v1/rooms/room-" + "9" * 124 + "/members", "room not found"),
        ("delete", f"/api/v1/users/{LONG_ID}", "user not found"),
        ("get", "/api/v1/messages?room_id=room-" + "9" * 124, "room not found"),
    ],
)
def test_path_and_query_ids_over_128_characters_are_unknown(client, method, path, text):
    make_user(LONG_ID, name="long")
    make_room(room_id="room-" + "9" * 124, members=[ADMIN_ID, LONG_ID])
    before = row_counts()

    response = getattr(client, method)(path)

    _assert_rejected(response, 404, text, before)


# --- unknown ids and odd-but-valid bodies: 4xx, nothing half-written --------------------------------


@pytest.mark.parametrize(
    ("path", "overrides", "text"),
    [
        ("/api/v1/rooms", {"creator_id": "u-nobody"}, "creator not found"),
        ("/api/v1/rooms", {"member_ids": ["u-bob", "u-nobody", "u-ghost"]}, "user not found: u-nobody"),
        (INVITE[1], {"user_ids": ["u-carol", "u-nobody"]}, "user not found: u-nobody"),
        (INVITE[2], {"room_id": "room-nope"}, "room not found"),
        (MEMBERS, {"user_ids": ["u-nobody"]}, "user not found: u-nobody"),
        ("/api/v1/im/messages", {"room_id": "room-nope"}, "room not found"),
        ("/api/v1/im/messages", {"mention_id": "u-nobody"}, "mentioned user not found"),
    ],
)
def test_unknown_ids_are_rejected_with_nothing_written(client, path, overrides, text):
    before = row_counts()

    _assert_rejected(post_json(client, path, {**ROUTES[path][0], **overrides}), 400, text, before)


HOSTILE_BODIES = [
    '{"room_id": {"$ne": null}}',
    '{"__proto__": {"admin": true}, "constructor": {}}',
    '{"content": "a", "content": 1}',
    '{"user_ids": [' + ",".join(['"u-x"'] * 5000) + "]}",
    '{"member_ids": ["' + "m" * 100_000 + '"]}',
    '{"title": "' + "t" * 100_000 + '", "creator_id": "u-admin"}',
    '{"room_id": "' + GROUP + '", "sender_id": "u-admin", "content": "' + "\\u0000" * 1000 + '"}',
    '{"room_id": "' + GROUP + '", "sender_id": "u-admin", "content": "\\ud800", "mention_id": "\\u0000"}',
    '{"agent_id": "u-dave", "room_id": "\\u0000"}',
    '{"":""}',
    "{}",
]


@pytest.mark.parametrize("path", ONE_PATH_PER_VIEW)
@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=lambda body: body[:30])
def test_hostile_bodies_never_cause_a_500_or_a_half_write(client, path, body):
    before = row_counts()

    response = post_json(client, path, body)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert error_text(response)
        if path != JOIN:  # the join keeps the agent's IM identity it ensured (§6.11 step 3)
            assert row_counts() == before


def test_a_failed_invite_leaves_the_room_exactly_as_it_was(client):
    room = seed_room()
    group = Room.objects.get(pk=GROUP)
    members_before = list(group.memberships.values_list("user_id", flat=True))

    post_json(client, INVITE[0], {**VALID_INVITE, "user_ids": ["u-carol", "u-nobody"]})
    post_json(client, INVITE[0], {**VALID_INVITE, "room_id": room.id})

    assert list(group.memberships.values_list("user_id", flat=True)) == members_before
    assert list(room.memberships.values_list("user_id", flat=True)) == [ADMIN_ID, "u-manager"]
