"""core/http.py through real IM routes: routing, 404/405, error bodies, body limits (§1)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import SuspiciousOperation, TooManyFieldsSent
from django.test import Client

from core.http import ONE_MIB, response_for_exception
from im import selectors
from im.identity import ADMIN_ID
from im.models import Message, Room
from im.tests.factories import error_text, make_room, make_user, post_json, row_counts, seed_room

pytestmark = pytest.mark.timeout(30)

ALL_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")

# Every IM route with the methods it serves; `{id}` stands for an existing room or user id.
ROUTES = {
    "/api/v1/im/bootstrap": {"get"},
    "/api/v1/bootstrap": {"get"},
    "/api/v1/rooms": {"get", "post"},
    "/api/v1/im/conversations": {"post"},
    "/api/v1/im/rooms": {"post"},
    "/api/v1/rooms/{room}": {"delete"},
    "/api/v1/rooms/{room}/members": {"get", "post"},
    "/api/v1/im/conversations/members": {"post"},
    "/api/v1/rooms/invite": {"post"},
    "/api/v1/im/rooms/invite": {"post"},
    "/api/v1/users": {"get"},
    "/api/v1/users/{user}": {"delete"},
    "/api/v1/messages": {"get", "post"},
    "/api/v1/im/messages": {"post"},
    "/api/v1/im/agents/join": {"post"},
}
POST_ROUTES = sorted(path for path, methods in ROUTES.items() if "post" in methods)


def _concrete(path: str) -> str:
    return path.replace("{room}", seed_room().id).replace("{user}", "u-manager")


# --- health -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
def test_healthz_answers_every_method_with_plain_ok_and_no_database(client, method):
    # No django_db mark: a database query here would fail the test.
    response = getattr(client, method)("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_healthz_answers_head(client):
    assert client.head("/healthz").status_code == 200


# --- 404 --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api",
        "/api/v1",
        "/api/v1/nope",
        "/api/v1/rooms/",
        "/api/v1/rooms/a/b",
        "/api/v1/rooms//members",
        "/api/v1/rooms/x/members/",
        "/api/v1/users/",
        "/api/v1/users/a/b",
        "/api/v1/im/bootstrap/",
        "/api/v1/messages/",
        "/api/v1/im/conversations/",
        "/api/v1/rooms/invite/",
        "/healthz/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_paths_are_plain_404_never_redirects(client, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert error_text(response) == "404 page not found"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/rooms/%20", "/api/v1/rooms/%20%09%20", "/api/v1/rooms/%20/members", "/api/v1/users/%20"],
)
@pytest.mark.parametrize("method", ["get", "post", "delete", "put"])
def test_ids_that_are_empty_after_trimming_are_404_before_the_method_check(client, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert error_text(response) == "404 page not found"


@pytest.mark.django_db
def test_path_ids_are_decoded_and_trimmed(client):
    room = make_room(room_id="room-padded")
    make_user("u-bob")

    assert client.delete("/api/v1/rooms/%20room-padded%09").status_code == 204
    assert client.delete("/api/v1/users/%20u-bob%20").status_code == 204
    assert not Room.objects.filter(pk=room.pk).exists()


@pytest.mark.django_db
def test_nul_in_a_path_id_becomes_replacement_character(client):
    make_room(room_id="room-a\ufffdb")

    assert client.delete("/api/v1/rooms/room-a%00b").status_code == 204
    assert not Room.objects.filter(pk="room-a\ufffdb").exists()


@pytest.mark.django_db
def test_query_values_are_trimmed_and_nul_becomes_replacement_character(client):
    room = make_room(room_id="room-q\ufffd")

    assert client.get("/api/v1/messages", {"room_id": " room-q\x00 "}).status_code == 200
    assert client.get("/api/v1/messages", {"room_id": f"\t{seed_room().id} "}).status_code == 200
    assert room.pk == "room-q\ufffd"


@pytest.mark.django_db
def test_a_query_string_with_thousands_of_parameters_is_served(client):
    extra = "&".join(f"p{number}=x" for number in range(3000))

    response = client.get(f"/api/v1/messages?room_id={seed_room().id}&{extra}")

    assert response.status_code == 200


def test_a_request_django_finds_suspicious_is_a_400_not_a_500(rf):
    for suspicious in (TooManyFieldsSent("too many"), SuspiciousOperation("odd")):
        response = response_for_exception(rf.get("/api/v1/messages"), suspicious)

        assert (response.status_code, response.content) == (400, b"bad request\n")


# --- 405 --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path, served in ROUTES.items() for method in ALL_METHODS if method not in served],
)
def test_methods_a_route_does_not_serve_are_405_including_head_and_options(client, path, method):
    response = getattr(client, method)(_concrete(path))

    assert response.status_code == 405
    if method != "head":  # a HEAD response never carries a body
        assert error_text(response) == "method not allowed"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_fixed_path_wins_over_the_id_pattern(client):
    make_user("u-bob")
    group = make_room(members=[ADMIN_ID])

    deleted = client.delete("/api/v1/rooms/invite")
    invited = post_json(
        client, "/api/v1/rooms/invite", {"room_id": group.id, "inviter_id": ADMIN_ID, "user_ids": ["u-bob"]}
    )

    assert deleted.status_code == 405
    assert invited.status_code == 200
    assert invited.json()["members"] == [ADMIN_ID, "u-bob"]


@pytest.mark.django_db
def test_405_for_a_wrong_method_comes_before_the_body_size_check(client):
    response = client.put("/api/v1/messages", data="x" * (ONE_MIB + 1), content_type="text/plain")

    assert response.status_code == 405


# --- error bodies -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_errors_are_plain_text_with_newline_and_nosniff(client):
    response = client.get("/api/v1/messages")

    assert response.status_code == 400
    assert response.content == b"room_id is required\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/html, application/json;q=0.5",
        "APPLICATION/JSON",
    ],
)
def test_errors_are_json_when_accept_lists_application_json(client, accept):
    response = client.get("/api/v1/messages", headers={"Accept": accept})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"status": 400, "message": "room_id is required"}}


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["*/*", "application/*", "text/plain", "application/jsonl", "text/json"])
def test_wildcards_and_other_types_do_not_ask_for_json_errors(client, accept):
    response = client.get("/api/v1/messages", headers={"Accept": accept})

    assert response.status_code == 400
    assert error_text(response) == "room_id is required"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"method": "get", "path": "/nope"}, 404, "404 page not found"),
        ({"method": "get", "path": "/api/v1/rooms/%20"}, 404, "404 page not found"),
        ({"method": "delete", "path": "/api/v1/users"}, 405, "method not allowed"),
        ({"method": "delete", "path": "/api/v1/rooms/room-missing"}, 404, "room not found"),
        ({"method": "delete", "path": "/api/v1/users/u-admin"}, 409, "cannot delete current user"),
        ({"method": "post", "path": "/api/v1/messages", "data": "{"}, 400, None),
        (
            {"method": "post", "path": "/api/v1/messages", "data": "x" * (ONE_MIB + 1)},
            413,
            "request body too large",
        ),
    ],
)
def test_every_kind_of_error_has_the_same_status_and_text_as_json(client, request_kwargs, status, message):
    method, path = request_kwargs["method"], request_kwargs["path"]
    extra = {"data": request_kwargs["data"], "content_type": "text/plain"} if "data" in request_kwargs else {}

    plain = getattr(client, method)(path, **extra)
    as_json = getattr(client, method)(path, headers={"Accept": "application/json"}, **extra)

    assert plain.status_code == as_json.status_code == status
    assert as_json["Content-Type"] == "application/json"
    assert as_json.json()["error"]["status"] == status
    assert as_json.json()["error"]["message"] + "\n" == plain.content.decode()
    if message is not None:
        assert as_json.json()["error"]["message"] == message


@pytest.mark.django_db
def test_unexpected_exceptions_are_plain_500_without_details(client, monkeypatch):
    def broken() -> list:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(selectors, "user_list", broken)

    response = client.get("/api/v1/users")

    assert response.status_code == 500
    assert error_text(response) == "internal server error"


@pytest.mark.django_db
def test_debug_mode_still_gives_plain_text_404_and_500(client, settings, monkeypatch):
    settings.DEBUG = True

    def broken() -> list:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(selectors, "room_list", broken)

    missing = client.get("/api/v1/nope")
    failed = client.get("/api/v1/rooms")

    assert missing.status_code == 404
    assert error_text(missing) == "404 page not found"
    assert failed.status_code == 500
    assert error_text(failed) == "internal server error"


@pytest.mark.django_db
def test_drf_error_shapes_never_reach_the_client(client):
    for response in (
        client.options("/api/v1/users"),
        client.post("/api/v1/users", data="{}", content_type="x"),
    ):
        assert b"detail" not in response.content
        assert response.content == b"method not allowed\n"


# --- success responses ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/plain", "text/html", "application/xml", "*/*", ""])
def test_success_bodies_are_json_whatever_the_accept_header(client, accept):
    response = client.get("/api/v1/users", headers={"Accept": accept})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert [user["id"] for user in response.json()] == [ADMIN_ID, "u-manager"]


@pytest.mark.django_db
def test_204_has_no_body(client):
    response = client.delete(f"/api/v1/rooms/{make_room().id}")

    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.django_db
def test_api_posts_need_no_csrf_token():
    strict_client = Client(enforce_csrf_checks=True)

    response = post_json(
        strict_client, "/api/v1/messages", {"room_id": seed_room().id, "sender_id": ADMIN_ID, "content": "hi"}
    )

    assert response.status_code == 201


# --- body size --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", POST_ROUTES)
def test_bodies_over_one_mib_are_413_before_decoding(client, path):
    before = row_counts()
    oversized = "{" + " " * ONE_MIB  # not JSON either: size is checked first

    response = client.post(_concrete(path), data=oversized, content_type="text/plain")

    assert response.status_code == 413
    assert error_text(response) == "request body too large"
    assert row_counts() == before


@pytest.mark.django_db
def test_a_body_of_exactly_one_mib_is_accepted(client):
    body = {"room_id": seed_room().id, "sender_id": ADMIN_ID, "content": ""}
    body["content"] = "x" * (ONE_MIB - len(json.dumps(body)))
    raw = json.dumps(body)
    assert len(raw.encode()) == ONE_MIB

    response = client.post("/api/v1/messages", data=raw, content_type="text/plain")

    assert response.status_code == 201
    assert Message.objects.get(message_id=response.json()["id"]).content == body["content"]
