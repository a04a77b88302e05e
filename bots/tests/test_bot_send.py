"""The bot send with files (`/api/bots/{bot_id}/messages/send`, an issue 14 extension of http-api.md §7.5):
multipart bodies as on the other sends (threads-attachments.md §2.4, §2.5); JSON bodies keep their rules."""

from __future__ import annotations

import pytest

from core.config import clear_config_cache
from im.attachments.storage import blob_path
from im.identity import ADMIN_ID
from im.models import Attachment, Message
from im.tests.attachments.multipart_bodies import CONTENT_TYPE, multipart_body
from im.tests.factories import error_text, make_agent, make_room, make_user, post_json, row_counts

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]

TOKEN = "bot-send-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOM = "room-bot-files"
SEND = "/api/bots/u-dev/messages/send"


@pytest.fixture(autouse=True)
def home(settings, tmp_path):
    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n')
    clear_config_cache()
    make_user("u-dev")
    make_agent("u-dev")
    make_room(room_id=ROOM, members=[ADMIN_ID, "u-dev"])
    yield tmp_path
    clear_config_cache()


def send_files(client, payload, files):
    return client.post(SEND, data=multipart_body(payload, files), content_type=CONTENT_TYPE, headers=AUTH)


def test_a_file_alone_is_a_message_and_its_attachment_is_stored(client):
    response = send_files(
        client, {"chat_id": ROOM, "text": ""}, [("report.txt", b"all green\n", "text/plain")]
    )

    assert response.status_code == 200, response.content
    message = Message.objects.get(message_id=response.json()["message_id"])
    assert (message.sender_id, message.room_id, message.content, message.thread_root_id) == (
        "u-dev",
        ROOM,
        "",
        None,
    )
    (attachment,) = Attachment.objects.filter(message=message)
    assert (attachment.safe_name, attachment.media_type, attachment.size_bytes) == (
        "report.txt",
        "text/plain",
        10,
    )
    assert blob_path(attachment.sha256).read_bytes() == b"all green\n"


@pytest.mark.parametrize(
    ("payload", "files", "status", "text"),
    [
        (None, [("a.txt", b"x", None)], 400, "payload is required"),
        (
            "[1]",
            [("a.txt", b"x", None)],
            400,
            "decode payload: body must be a JSON object",
        ),
        ({"room_id": ROOM, "text": 5}, [], 400, 'decode payload: field "text" must be a string'),
        ({"room_id": ROOM, "text": ""}, [], 400, "text is required"),
        ({"room_id": "room-none", "text": ""}, [("a.txt", b"", None)], 400, "room not found"),
        ({"room_id": ROOM, "text": "hi"}, [("a.txt", b"", None)], 400, 'attachment "a.txt" is empty'),
        ({"room_id": ROOM, "text": "hi"}, [("n.txt", b"x", None)] * 11, 400, "too many attachments: max 10"),
    ],
)
def test_multipart_checks_in_order_and_nothing_is_stored(client, payload, files, status, text):
    before = row_counts()

    response = send_files(client, payload, files)

    assert (response.status_code, error_text(response)) == (status, text)
    assert row_counts() == before
    assert not Attachment.objects.exists()


def test_a_json_body_keeps_its_one_mib_limit(client):
    response = post_json(client, SEND, {"room_id": ROOM, "text": "x" * (1024 * 1024)}, **AUTH)

    assert (response.status_code, error_text(response)) == (413, "request body too large")


def test_a_json_body_ignores_attachments_and_still_needs_text(client):
    response = post_json(client, SEND, {"room_id": ROOM, "text": "", "attachments": [{"id": "x"}]}, **AUTH)

    assert (response.status_code, error_text(response)) == (400, "text is required")
