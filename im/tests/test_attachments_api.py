"""Attachments over HTTP (threads-attachments.md §2): multipart sends, downloads with Range, room
attachments, cascades, and the workspace copies of participant deliveries."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from drf_spectacular.generators import SchemaGenerator

from agents.models import Agent
from bots.participants.identity import participant_resolve
from bots.participants.stream import participant_event_data, recipient_load
from core.config import clear_config_cache
from im import services as im_services
from im.attachments.storage import blob_path, blobs_root, release_pending
from im.events import MESSAGE_CREATED
from im.identity import ADMIN_ID
from im.models import Attachment, Message, Thread
from im.realtime.eventlog import LoggedEvent
from im.tests.attachments.files import PDF_BYTES, jpeg_bytes, png_bytes
from im.tests.attachments.multipart_bodies import CONTENT_TYPE, multipart_body
from im.tests.factories import (
    error_text,
    event_mark,
    events_after,
    make_agent,
    make_room,
    make_user,
    post_json,
)

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

TOKEN = "attachments-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOM = "room-files"
OTHER_ROOM = "room-elsewhere"
SEND = "/api/v1/messages"
# A caller that is not on this machine; the test client is local unless told otherwise.
REMOTE_ADDRESS = "203.0.113.9"
WRONG_AUTH = {"Authorization": "Bearer not-a-token"}
PARTICIPANT_SEND = "/api/v1/channels/csgclaw/participants/pt-dev/messages"
# Blobs are released after the deleting transaction commits, so these tests commit for real.
COMMITS = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def home(settings, tmp_path) -> Path:
    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    clear_config_cache()
    yield tmp_path
    clear_config_cache()


@pytest.fixture(autouse=True)
def team() -> None:
    for agent_id in ("u-dev", "u-ops"):
        make_user(agent_id)
        make_agent(agent_id)
    make_room(room_id=ROOM, members=[ADMIN_ID, "u-dev"])
    make_room(room_id=OTHER_ROOM, members=[ADMIN_ID, "u-ops"])


def payload(**fields) -> dict:
    return {"room_id": ROOM, "sender_id": ADMIN_ID, "content": "", **fields}


def send_files(client, files, body=None, path: str = SEND, field: str = "files", **headers):
    data = multipart_body(payload() if body is None else body, files, field=field)
    return client.post(path, data=data, content_type=CONTENT_TYPE, headers=headers)


def sent_attachments(client, files, **fields) -> list[dict]:
    response = send_files(client, files, payload(**fields))
    assert response.status_code == 201, response.content
    return response.json()["attachments"]


def body_of(response) -> bytes:
    """The streamed body read as Daphne reads it, through the async iterator (the sync client's
    `b"".join(response)` would also work, with Django's warning that it is the WSGI fallback)."""

    async def read_all() -> bytes:
        return b"".join([chunk async for chunk in response])

    return async_to_sync(read_all)()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- send ---------------------------------------------------------------------------------------------


def test_a_png_is_stored_as_an_image_with_its_size_and_urls(client):
    data = png_bytes(64, 48)
    response = send_files(client, [("diagram.png", data, "image/png")], payload(content="look"))
    assert response.status_code == 201, response.content
    message = response.json()
    (attachment,) = message["attachments"]
    sha = hashlib.sha256(data).hexdigest()

    assert list(attachment) == [
        "id",
        "name",
        "kind",
        "media_type",
        "size_bytes",
        "sha256",
        "created_at",
        "download_url",
        "preview_url",
        "width",
        "height",
    ]
    assert attachment["id"].startswith(f"att-{sha[:12]}-") and len(attachment["id"]) == 4 + 12 + 1 + 32
    assert (attachment["name"], attachment["kind"], attachment["media_type"]) == (
        "diagram.png",
        "image",
        "image/png",
    )
    assert (attachment["size_bytes"], attachment["sha256"]) == (len(data), sha)
    assert (attachment["width"], attachment["height"]) == (64, 48)
    row = Attachment.objects.get(pk=attachment["id"])
    assert len(row.download_token) == 32
    assert attachment["download_url"] == f"/api/v1/attachments/{row.id}?token={row.download_token}"
    assert attachment["preview_url"] == attachment["download_url"]
    assert "workspace_path" not in attachment
    assert mode(blob_path(sha)) == 0o600 and blob_path(sha).read_bytes() == data
    assert mode(blobs_root()) == 0o700

    listed = client.get("/api/v1/messages", {"room_id": ROOM}).json()
    assert [item.get("attachments") for item in listed if item["id"] == message["id"]] == [[attachment]]


def test_the_same_bytes_again_reuse_the_blob_with_a_new_id_and_token(client):
    first = sent_attachments(client, [("a.png", png_bytes(), "image/png")])[0]
    inode = blob_path(first["sha256"]).stat().st_ino
    second = sent_attachments(client, [("b.png", png_bytes(), "image/png")])[0]

    assert second["sha256"] == first["sha256"]
    assert second["id"] != first["id"] and second["download_url"] != first["download_url"]
    assert blob_path(first["sha256"]).stat().st_ino == inode
    assert len(list(blobs_root().rglob("*.*"))) == 0 and len(list(blobs_root().glob("*/*"))) == 1


def test_message_created_carries_the_attachments_and_the_bot_frame_does_not(client):
    mark = event_mark()
    attachment = sent_attachments(
        client, [("notes.txt", b"some notes", "text/plain")], content='<at user_id="u-dev">dev</at> read'
    )[0]
    (event,) = [event for event in events_after(mark) if event.type == MESSAGE_CREATED]

    assert event.payload["message"]["attachments"] == [attachment]
    assert "preview_url" not in attachment and "width" not in attachment
    assert event.participant_payload["attachments"] == [attachment]
    assert list(event.participant_payload)[7:10] == ["text", "attachments", "timestamp"]
    assert "attachments" not in event.bot_payload


def test_an_attachment_only_message_is_accepted_but_a_json_one_needs_content(client):
    message = send_files(client, [("a.txt", b"x", None)])
    assert message.status_code == 201 and message.json()["content"] == ""
    refused = post_json(client, SEND, payload())
    assert (refused.status_code, error_text(refused)) == (400, "content is required")


def test_attachments_inside_a_json_body_are_ignored(client):
    response = post_json(client, SEND, payload(content="hi", attachments=[{"id": "att-x"}]))
    assert response.status_code == 201 and "attachments" not in response.json()


@pytest.mark.parametrize(
    ("body", "files", "status", "text"),
    [
        (None, [("a.txt", b"x", None)], 400, "payload is required"),
        ("{nope", [("a.txt", b"x", None)], 400, "decode payload: "),
        ({"room_id": 5}, [], 400, 'decode payload: field "room_id" must be a string'),
        (
            payload(),
            [(f"{index}.txt", b"x", None) for index in range(11)],
            400,
            "too many attachments: max 10",
        ),
        (payload(room_id="room-none"), [("a.txt", b"", None)], 400, "room not found"),
        (payload(), [("ok.txt", b"x", None), ("a.txt", b"", None)], 400, 'attachment "a.txt" is empty'),
        (payload(content="  "), [], 400, "content is required"),
    ],
)
def test_check_order(client, body, files, status, text):
    if body is None:
        data = multipart_body(None, files)
        response = client.post(SEND, data=data, content_type=CONTENT_TYPE)
    else:
        response = send_files(client, files, body)
    assert response.status_code == status
    assert error_text(response).startswith(text)
    assert not Attachment.objects.exists()


def test_a_file_over_25_mib_is_413_before_the_route_checks(client):
    big = b"\0" * (25 * 1024 * 1024 + 1)
    response = send_files(client, [("big.bin", big, None)], payload(room_id="room-none"))
    assert response.status_code == 413
    assert (
        error_text(response) == 'attachment payload is too large: attachment "big.bin" exceeds 26214400 bytes'
    )
    assert not list((blobs_root().parent / "incoming").iterdir())


def test_a_refused_message_leaves_no_upload_files_and_no_blobs(client):
    send_files(client, [("ok.txt", b"x", None), ("a.txt", b"", None)])
    assert not list((blobs_root().parent / "incoming").iterdir())
    assert not blobs_root().exists() or not list(blobs_root().glob("*/*"))


@pytest.mark.parametrize(
    ("declared", "data", "expected"),
    [
        ("image/png", jpeg_bytes(), "image/jpeg"),
        ("image/png", b"plain text", "text/plain"),
        ("application/json", b'{"a": 1}', "application/json"),
        (None, PDF_BYTES, "application/pdf"),
    ],
)
def test_media_types(client, declared, data, expected):
    assert sent_attachments(client, [("f", data, declared)])[0]["media_type"] == expected


def test_names_are_made_safe(client):
    (attachment,) = sent_attachments(client, [("a<b>.txt", b"x", None)])
    # Original names stop at 255 bytes; the 300-byte case of the spec is test_media's safe-name test.
    long_name = "n" * 251 + ".pdf"
    (long,) = sent_attachments(client, [(long_name, PDF_BYTES, None)])
    assert attachment["name"] == "a_b_.txt"
    assert long["name"] == "n" * 156 + ".pdf"
    assert Attachment.objects.get(pk=long["id"]).original_name == long_name
    too_long = send_files(client, [("n" * 252 + ".pdf", PDF_BYTES, None)])
    assert (too_long.status_code, error_text(too_long)) == (400, "attachment filename is too long")


def test_the_file_field_name_is_accepted_too(client):
    response = send_files(client, [("one.txt", b"1", None)], field="file")
    assert [item["name"] for item in response.json()["attachments"]] == ["one.txt"]


def test_the_im_messages_alias_takes_multipart_too(client):
    response = send_files(client, [("one.txt", b"1", None)], path="/api/v1/im/messages")
    assert response.status_code == 201 and len(response.json()["attachments"]) == 1


# --- download -----------------------------------------------------------------------------------------


def test_download_with_the_token_streams_the_bytes_with_every_header(client):
    data = png_bytes(5, 5)
    attachment = sent_attachments(client, [("diagram.png", data, "image/png")])[0]
    response = client.get(attachment["download_url"])

    assert response.status_code == 200
    assert body_of(response) == data
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(data))
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == "inline; filename=diagram.png"
    assert response["Accept-Ranges"] == "bytes"


def test_download_needs_the_token_or_a_bearer(client):
    attachment = sent_attachments(client, [("a.txt", b"abc", None)])[0]
    path = f"/api/v1/attachments/{attachment['id']}"

    wrong = client.get(path, {"token": "wrong"}, headers=WRONG_AUTH)
    assert (wrong.status_code, error_text(wrong)) == (401, "unauthorized")
    assert client.get(path, headers=WRONG_AUTH).status_code == 401
    token = attachment["download_url"].split("token=", 1)[1]
    padded = client.get(f"{path}?token=%20{token}%20", headers=WRONG_AUTH)
    assert padded.status_code == 200, "the download token is compared trimmed"
    assert body_of(client.get(path, headers=AUTH)) == b"abc"
    agent_token = make_agent("u-zed").api_token
    assert client.get(path, headers={"Authorization": f"Bearer {agent_token}"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/api/v1/attachments/att-X", 404, "attachment id is required"),
        ("/api/v1/attachments/nope-1234", 404, "attachment id is required"),
        ("/api/v1/attachments/att-0123456789ab-ffff", 404, "attachment not found"),
        ("/api/v1/attachments/%20", 404, "404 page not found"),
    ],
)
def test_download_ids(client, path, status, text):
    response = client.get(path, headers=AUTH)
    assert (response.status_code, error_text(response)) == (status, text)
    # Existence is checked before authorisation (§2.7): no credentials give the same answer.
    anonymous = client.get(path)
    assert (anonymous.status_code, error_text(anonymous)) == (status, text)


def test_download_is_get_only(client):
    attachment = sent_attachments(client, [("a.txt", b"abc", None)])[0]
    for method in ("post", "head", "delete"):
        response = getattr(client, method)(attachment["download_url"])
        assert response.status_code == 405
        if method != "head":
            assert error_text(response) == "method not allowed"


def test_a_missing_blob_is_not_found(client):
    attachment = sent_attachments(client, [("a.txt", b"abc", None)])[0]
    blob_path(attachment["sha256"]).unlink()
    response = client.get(attachment["download_url"])
    assert (response.status_code, error_text(response)) == (404, "attachment not found")


@pytest.mark.parametrize(
    ("name", "data", "disposition"),
    [
        ("report.pdf", PDF_BYTES, "attachment; filename=report.pdf"),
        ("my file.pdf", PDF_BYTES, 'attachment; filename="my file.pdf"'),
        ("报告.pdf", PDF_BYTES, "attachment; filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf"),
    ],
)
def test_content_disposition(client, name, data, disposition):
    attachment = sent_attachments(client, [(name, data, None)])[0]
    assert client.get(attachment["download_url"])["Content-Disposition"] == disposition


@pytest.mark.parametrize(
    ("header", "status", "content_range", "part"),
    [
        ("bytes=0-3", 206, "bytes 0-3/10", b"0123"),
        ("bytes=4-", 206, "bytes 4-9/10", b"456789"),
        ("bytes=-3", 206, "bytes 7-9/10", b"789"),
        ("bytes=8-100", 206, "bytes 8-9/10", b"89"),
        ("bytes=0-1,4-5", 200, None, b"0123456789"),
        ("items=0-1", 200, None, b"0123456789"),
        ("bytes=5-2", 200, None, b"0123456789"),
    ],
)
def test_range_requests(client, header, status, content_range, part):
    attachment = sent_attachments(client, [("digits.txt", b"0123456789", None)])[0]
    response = client.get(attachment["download_url"], headers={"Range": header})

    assert response.status_code == status
    assert body_of(response) == part
    assert response["Content-Length"] == str(len(part))
    assert response.get("Content-Range") == content_range
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=99-100", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(client, header):
    attachment = sent_attachments(client, [("digits.txt", b"0123456789", None)])[0]
    response = client.get(attachment["download_url"], headers={"Range": header})
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */10"
    assert error_text(response) == "requested range not satisfiable"


# --- room attachments ---------------------------------------------------------------------------------


def room_url(room_id: str = ROOM, attachment_id: str = "") -> str:
    return f"/api/v1/rooms/{room_id}/attachments" + (f"/{attachment_id}" if attachment_id else "")


def test_room_list_orders_filters_and_pages(client):
    first = sent_attachments(client, [("alpha.txt", b"1", None), ("Beta.TXT", b"2", None)])
    later = send_files(client, [("gamma.pdf", PDF_BYTES, None)]).json()
    elsewhere = payload(room_id=OTHER_ROOM)
    send_files(client, [("other.txt", b"o", None)], elsewhere)

    listed = client.get(room_url(), headers=AUTH).json()
    assert listed["total"] == 3 and (listed["from"], listed["limit"]) == (0, 50)
    assert listed["items"][0]["id"] == later["attachments"][0]["id"]
    assert list(listed["items"][0]) == [
        "id",
        "name",
        "kind",
        "media_type",
        "size_bytes",
        "sha256",
        "created_at",
        "message_id",
        "sender_id",
    ]
    assert listed["items"][0]["message_id"] == later["id"] and listed["items"][0]["sender_id"] == ADMIN_ID
    # Same upload time: ties by id descending.
    assert [item["id"] for item in listed["items"][1:]] == sorted(
        (item["id"] for item in first), reverse=True
    )

    beta = client.get(room_url(), {"query": "beta"}, headers=AUTH).json()
    assert [item["name"] for item in beta["items"]] == ["Beta.TXT"] and beta["total"] == 1
    by_message = client.get(room_url(), {"message_id": later["id"]}, headers=AUTH).json()
    assert [item["name"] for item in by_message["items"]] == ["gamma.pdf"]
    page = client.get(room_url(), {"from": "1", "limit": "1"}, headers=AUTH).json()
    assert (page["total"], page["from"], page["limit"], len(page["items"])) == (3, 1, 1, 1)


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"from": "-1"}, "invalid from"),
        ({"from": "x"}, "invalid from"),
        ({"limit": "0"}, "invalid limit"),
        ({"limit": "201"}, "invalid limit"),
        ({"limit": ""}, "invalid limit"),
    ],
)
def test_room_list_paging_errors(client, query, text):
    response = client.get(room_url(), query, headers=AUTH)
    assert (response.status_code, error_text(response)) == (400, text)


def test_room_routes_check_auth_room_and_caller(client):
    dev_token = {"Authorization": f"Bearer {Agent.objects.get(pk='u-dev').api_token}"}
    ops_token = {"Authorization": f"Bearer {Agent.objects.get(pk='u-ops').api_token}"}

    assert client.get(room_url(), headers=WRONG_AUTH).status_code == 401
    assert client.get(room_url(), REMOTE_ADDR=REMOTE_ADDRESS).status_code == 401
    assert client.get(room_url(), headers=ops_token).status_code == 401
    assert client.get(room_url(), headers=dev_token).status_code == 200
    missing = client.get(room_url("room-none"), headers=AUTH)
    assert (missing.status_code, error_text(missing)) == (404, "404 page not found")
    outsider = client.get(room_url(), headers={**AUTH, "X-CSGClaw-Caller-Agent": "pt-ops"})
    assert (outsider.status_code, error_text(outsider)) == (403, "caller is not a current room member")
    assert client.get(room_url(), headers={**AUTH, "X-CSGClaw-Caller-Agent": "dev"}).status_code == 200
    assert client.get(room_url(), headers={**AUTH, "X-CSGClaw-Caller-Agent": " "}).status_code == 200


def test_room_download_only_for_the_rooms_attachments(client):
    (mine,) = sent_attachments(client, [("a.txt", b"abc", None)])
    theirs = send_files(client, [("b.txt", b"def", None)], payload(room_id=OTHER_ROOM)).json()["attachments"][
        0
    ]

    response = client.get(room_url(attachment_id=mine["id"]), headers=AUTH)
    assert response.status_code == 200 and body_of(response) == b"abc"
    assert response["Cache-Control"] == "no-store"
    assert response["X-CSGClaw-File-SHA256"] == mine["sha256"]
    assert response["X-CSGClaw-File-Size"] == "3"
    assert response["Content-Disposition"] == "attachment; filename=a.txt"
    foreign = client.get(room_url(attachment_id=theirs["id"]), headers=AUTH)
    assert (foreign.status_code, error_text(foreign)) == (404, "404 page not found")


@COMMITS
def test_room_delete_removes_the_attachment_everywhere(client):
    (kept, gone) = sent_attachments(client, [("kept.txt", b"kept", None), ("gone.txt", b"gone", None)])
    message_id = Attachment.objects.get(pk=gone["id"]).message.message_id
    room = Message.objects.get(message_id=message_id).room
    Thread.objects.create(
        room=room, root_message_id=message_id, context=[{"id": message_id, "attachments": [kept, gone]}]
    )
    mark = event_mark()

    response = client.delete(room_url(attachment_id=gone["id"]), headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    (event,) = events_after(mark)
    assert event.payload == {"type": "room.attachment_deleted", "room_id": ROOM, "attachment_id": gone["id"]}
    assert not event.recipients.exists()
    listed = client.get("/api/v1/messages", {"room_id": ROOM}).json()
    assert [item.get("attachments") for item in listed if item["id"] == message_id] == [[kept]]
    assert Thread.objects.get(room=room).context == [{"id": message_id, "attachments": [kept]}]
    assert not blob_path(gone["sha256"]).exists() and blob_path(kept["sha256"]).exists()

    again = client.delete(room_url(attachment_id=gone["id"]), headers=AUTH)
    assert (again.status_code, error_text(again)) == (404, "attachment not found in room")


@COMMITS
def test_a_shared_blob_stays_while_another_attachment_uses_it(client):
    (first,) = sent_attachments(client, [("a.txt", b"same", None)])
    (second,) = sent_attachments(client, [("b.txt", b"same", None)])
    client.delete(room_url(attachment_id=first["id"]), headers=AUTH)
    assert blob_path(first["sha256"]).exists()
    client.delete(room_url(attachment_id=second["id"]), headers=AUTH)
    assert not blob_path(first["sha256"]).exists()


# --- cascades -----------------------------------------------------------------------------------------


@COMMITS
def test_deleting_the_room_removes_rows_and_unreferenced_blobs(client):
    (mine,) = sent_attachments(client, [("a.txt", b"room only", None)])
    (shared,) = sent_attachments(client, [("s.txt", b"shared", None)])
    send_files(client, [("s.txt", b"shared", None)], payload(room_id=OTHER_ROOM))

    assert client.delete(f"/api/v1/rooms/{ROOM}").status_code == 204
    assert not Attachment.objects.filter(room_id=ROOM).exists()
    assert not blob_path(mine["sha256"]).exists()
    assert blob_path(shared["sha256"]).exists()


@COMMITS
def test_deleting_the_sender_removes_their_attachments(client):
    response = send_files(client, [("a.txt", b"from dev", None)], payload(sender_id="u-dev"))
    sha = response.json()["attachments"][0]["sha256"]
    assert client.delete("/api/v1/users/u-dev").status_code == 204
    assert not Attachment.objects.exists() and not blob_path(sha).exists()


# --- participant send and delivery --------------------------------------------------------------------


def test_participant_multipart_send_with_two_files_and_empty_text(client):
    body = {"room_id": ROOM, "text": ""}
    response = send_files(
        client,
        [("one.txt", b"1", None), ("two.png", png_bytes(), "image/png")],
        body,
        PARTICIPANT_SEND,
        **AUTH,
    )
    assert response.status_code == 200, response.content
    message = Message.objects.get(message_id=response.json()["message_id"])
    assert message.sender_id == "u-dev" and message.content == ""
    assert [row.safe_name for row in message.attachments.order_by("position")] == ["one.txt", "two.png"]


def test_participant_send_checks_text_then_files(client):
    refused = send_files(client, [], {"room_id": ROOM, "text": ""}, PARTICIPANT_SEND, **AUTH)
    assert (refused.status_code, error_text(refused)) == (400, "text is required")
    bad = send_files(client, [], '{"room_id": 1}', PARTICIPANT_SEND, **AUTH)
    assert error_text(bad) == 'decode payload: field "room_id" must be a string'
    empty = send_files(client, [("a.txt", b"", None)], {"room_id": ROOM}, PARTICIPANT_SEND, **AUTH)
    assert error_text(empty) == 'attachment "a.txt" is empty'


@COMMITS
def test_a_participant_replace_without_files_drops_the_old_ones(client):
    body = {"room_id": ROOM, "text": "v1", "message_id": "pico-1"}
    first = send_files(client, [("a.txt", b"replaced", None)], body, PARTICIPANT_SEND, **AUTH)
    assert first.status_code == 200
    sha = Attachment.objects.get().sha256
    again = post_json(client, PARTICIPANT_SEND, {**body, "text": "v2"}, **AUTH)
    assert again.status_code == 200
    assert not Attachment.objects.exists() and not blob_path(sha).exists()
    assert Message.objects.get(message_id="pico-1").content == "v2"


def _delivered(home: Path, *, mark: int) -> dict:
    (event,) = [event for event in events_after(mark) if event.type == MESSAGE_CREATED]
    logged = LoggedEvent(
        seq=event.seq,
        payload=event.payload,
        bot_payload=event.bot_payload,
        participant_payload=event.participant_payload,
        mentioned=True,
    )
    return participant_event_data(logged, recipient=recipient_load(participant_resolve("pt-dev")))


def test_a_participant_delivery_copies_the_file_into_the_agents_workspace(client, home):
    workspace = home / "agents" / "dev" / "workspace"
    workspace.mkdir(parents=True)
    mark = event_mark()
    data = b"for the agent"
    (attachment,) = sent_attachments(
        client, [("brief.txt", data, None)], content='<at user_id="u-dev">dev</at> read'
    )

    delivered = _delivered(home, mark=mark)
    (copied,) = delivered["attachments"]
    message_id = delivered["message_id"]
    expected = f".csgclaw/attachments/{ROOM}/{message_id}/{attachment['id']}-brief.txt"
    assert copied == {**attachment, "workspace_path": expected}
    target = workspace / expected
    assert target.read_bytes() == data and mode(target) == 0o600
    assert mode(workspace / ".csgclaw") == 0o700 and mode(target.parent) == 0o700

    target.write_bytes(b"changed by the box")
    _delivered(home, mark=mark)
    assert target.read_bytes() == data


def test_a_symlink_out_of_the_workspace_gets_no_workspace_path(client, home, tmp_path_factory):
    workspace = home / "agents" / "dev" / "workspace"
    workspace.mkdir(parents=True)
    outside = tmp_path_factory.mktemp("outside")
    (workspace / ".csgclaw").symlink_to(outside, target_is_directory=True)
    mark = event_mark()
    sent_attachments(client, [("brief.txt", b"x", None)], content='<at user_id="u-dev">dev</at> read')

    (delivered,) = _delivered(home, mark=mark)["attachments"]
    assert "workspace_path" not in delivered
    assert not list(outside.iterdir())


def test_no_workspace_no_workspace_path(client, home):
    mark = event_mark()
    sent_attachments(client, [("brief.txt", b"x", None)], content='<at user_id="u-dev">dev</at> read')
    (delivered,) = _delivered(home, mark=mark)["attachments"]
    assert "workspace_path" not in delivered


def test_the_admin_lists_attachments_with_size_and_type(admin_client, client):
    sent_attachments(client, [("listed.txt", b"12345", None)])
    page = admin_client.get("/admin/im/attachment/")
    assert page.status_code == 200
    assert b"listed.txt" in page.content and b"text/plain" in page.content
    message = Message.objects.get(attachments__safe_name="listed.txt")
    change = admin_client.get(f"/admin/im/message/{message.pk}/change/")
    assert change.status_code == 200 and b"listed.txt" in change.content


def test_the_start_up_collector_removes_blobs_no_row_refers_to(client):
    (kept,) = sent_attachments(client, [("kept.txt", b"kept", None)])
    stray = blob_path(hashlib.sha256(b"stray").hexdigest())
    stray.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    stray.write_bytes(b"stray")
    release_pending([kept["sha256"]])

    assert im_services.attachment_blobs_collect() == 1
    assert not stray.exists() and blob_path(kept["sha256"]).exists()


def test_thread_context_attachments_are_copied_under_their_own_message(client, home):
    workspace = home / "agents" / "dev" / "workspace"
    workspace.mkdir(parents=True)
    root = send_files(client, [("root.txt", b"root file", None)], payload(content="root")).json()
    mark = event_mark()
    reply = payload(
        content='<at user_id="u-dev">dev</at> see root',
        relates_to={"rel_type": "m.thread", "event_id": root["id"]},
    )
    assert post_json(client, SEND, reply).status_code == 201

    delivered = _delivered(home, mark=mark)
    (context_root,) = [
        message for message in delivered["thread_context"]["context"] if message["id"] == root["id"]
    ]
    (copied,) = context_root["attachments"]
    assert copied["workspace_path"] == f".csgclaw/attachments/{ROOM}/{root['id']}/{copied['id']}-root.txt"
    assert (workspace / copied["workspace_path"]).read_bytes() == b"root file"


def test_the_schema_documents_multipart_message_sends():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in (
        "/api/v1/messages",
        "/api/v1/im/messages",
        "/api/v1/channels/csgclaw/participants/{participant_id}/messages",
    ):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) >= {"application/json", "multipart/form-data"}
        assert content["multipart/form-data"]["schema"]["required"] == ["payload"]
    assert "/api/v1/attachments/{attachment_id}" in paths


def test_the_admins_own_browser_may_use_the_room_routes_without_a_bearer(client):
    """Extension: a local caller or a /login session reads the room's files as the web UI's files panel
    does; it could read every message and its download URL through the local routes anyway."""
    sent_attachments(client, [("panel.txt", b"for the panel", None)])

    local = client.get(room_url())
    assert local.status_code == 200
    (item,) = local.json()["items"]
    assert body_of(client.get(room_url(attachment_id=item["id"]))) == b"for the panel"

    remote = {"REMOTE_ADDR": REMOTE_ADDRESS}
    assert client.get(room_url(), **remote).status_code == 401
    assert client.post("/login", {"token": TOKEN}, **remote).status_code == 302
    assert client.get(room_url(), **remote).json()["total"] == 1
