"""Mention resolution (http-api.md §2.6): `<at>` tags, `@handle` tokens and their traps, de-duplication."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from im import selectors
from im.identity import ADMIN_ID
from im.mentions import at_tag, resolve_mentions
from im.tests.factories import make_room, make_user, post_json

pytestmark = pytest.mark.timeout(30)

# handle → user id of the users these unit tests pretend exist
USERS = {
    "alice": "u-alice",
    "bob": "u-bob",
    "al.ice": "u-dotted",
    "bob-2": "u-bob2",
    "x_y": "u-xy",
    "admin": ADMIN_ID,
}


def _existing_ids(ids: Iterable[str]) -> set[str]:
    return set(ids) & set(USERS.values())


def _ids_by_handle(handles: Iterable[str]) -> dict[str, str]:
    return {handle: USERS[handle] for handle in handles if handle in USERS}


def mentions(content: str) -> list[str]:
    return resolve_mentions(content, existing_ids=_existing_ids, ids_by_handle=_ids_by_handle)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('<at user_id="u-alice">Alice</at> hi', ["u-alice"]),
        ('<at user_id="u-nobody">Ghost</at> hi', []),
        (
            '<at user_id="u-bob">b</at> <at user_id="u-nobody">x</at> <at user_id="u-alice">a</at>',
            ["u-bob", "u-alice"],
        ),
        ('<at user_id="u-alice">Alice', []),
        ('<at user_id="">nobody</at>', []),
        ('<at user_id="u-alice">two\nlines</at>', []),
        ('<at user_id="u-alice"></at><at user_id="u-bob">B</at>', ["u-alice", "u-bob"]),
        ("<at user_id='u-alice'>single quotes</at>", []),
    ],
)
def test_at_tags_resolve_to_existing_users_in_order(content, expected):
    assert mentions(content) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("@alice", ["u-alice"]),
        ("hi @alice", ["u-alice"]),
        ("@Alice", ["u-alice"]),
        ("@ALICE please", ["u-alice"]),
        ("@alice,", ["u-alice"]),
        ("@alice!", ["u-alice"]),
        ("@alice: go", ["u-alice"]),
        ("(@alice)", ["u-alice"]),
        ("，@alice", ["u-alice"]),
        ("é@alice", ["u-alice"]),
        ("@@alice", ["u-alice"]),
        ("line\n@alice", ["u-alice"]),
        ("@al.ice", ["u-dotted"]),
        ("@bob-2 and @x_y", ["u-bob2", "u-xy"]),
        ("mail@alice", []),
        ("x_@alice", []),
        ("1@alice", []),
        ("@alice.", []),
        ("@alice-", []),
        ("@alice_", []),
        ("@ålice", []),
        ("@ alice", []),
        ("@", []),
        ("@nobody", []),
        ("@" + "a" * 200, []),
    ],
)
def test_handle_tokens(content, expected):
    assert mentions(content) == expected


def test_tags_come_before_handles_and_duplicates_keep_the_first_occurrence():
    content = '@bob @alice <at user_id="u-alice">A</at> @bob <at user_id="u-bob">B</at> @ALICE'

    assert mentions(content) == ["u-alice", "u-bob"]


def test_self_mentions_count():
    assert mentions("@admin note to self") == [ADMIN_ID]


def test_lookups_are_skipped_when_there_is_nothing_to_look_up():
    def unexpected(_ids):
        raise AssertionError("no lookup expected")

    assert resolve_mentions("plain text, mail@alice", existing_ids=unexpected, ids_by_handle=unexpected) == []


def test_at_tag_markup():
    assert at_tag("u-dev", "dev") == '<at user_id="u-dev">dev</at>'


@pytest.mark.django_db
def test_resolution_against_the_database_costs_at_most_two_queries(django_assert_max_num_queries):
    make_user("u-alice")
    make_user("u-bob")
    content = " ".join(["@alice", "@bob", '<at user_id="u-bob">b</at>', '<at user_id="u-alice">a</at>'] * 50)

    with django_assert_max_num_queries(2):
        resolved = resolve_mentions(
            content, existing_ids=selectors.existing_user_ids, ids_by_handle=selectors.user_ids_by_handle
        )

    assert resolved == ["u-bob", "u-alice"]


@pytest.mark.django_db
def test_mentions_through_the_api_ignore_membership_and_include_the_sender(client):
    make_user("u-alice")
    make_user("u-outsider")
    room = make_room(members=[ADMIN_ID, "u-alice"])

    response = post_json(
        client,
        "/api/v1/messages",
        {"room_id": room.id, "sender_id": ADMIN_ID, "content": "@admin @outsider mail@alice @alice."},
    )

    assert response.json()["mentions"] == [ADMIN_ID, "u-outsider"]


@pytest.mark.django_db
def test_mention_id_prefix_uses_the_users_name_and_is_added_only_when_missing(client):
    make_user("u-alice", name="alice smith", handle="alice")
    room = make_room(members=[ADMIN_ID])

    def send(content: str) -> dict:
        body = {"room_id": room.id, "sender_id": ADMIN_ID, "content": content, "mention_id": "u-alice"}
        return post_json(client, "/api/v1/messages", body).json()

    prefixed = send("review please")
    by_handle = send("@Alice review please")
    by_tag = send('<at user_id="u-alice">Al</at> review please')
    trap = send("mail@alice review please")

    assert prefixed["content"] == '<at user_id="u-alice">alice smith</at> review please'
    assert by_handle["content"] == "@Alice review please"
    assert by_tag["content"] == '<at user_id="u-alice">Al</at> review please'
    assert trap["content"] == '<at user_id="u-alice">alice smith</at> mail@alice review please'
    assert [message["mentions"] for message in (prefixed, by_handle, by_tag, trap)] == [["u-alice"]] * 4
