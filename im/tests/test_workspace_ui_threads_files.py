# ruff: noqa: F811  (the shared fixtures are imported by name and requested as arguments)
"""Threads and attachments in the workspace, in headless Chromium (threads-attachments.md §3.2): uploads by
the attach button, by paste and by drop with the upload bar, inline images served with status 200, the
room's files panel, and a thread panel kept current by the IM stream.

Screenshots go to the pytest tmp dir and, when `CSGCLAW_TEST_ARTIFACTS` is set, are copied there too.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from im.tests.test_workspace_ui import (  # noqa: F401  (fixtures used by name)
    CONFIG_TOML,
    WorkspaceServer,
    browser,
    message_items,
    needs_chromium,
    open_workspace,
    page,
    served_workspace,
)
from im.tests.test_workspace_ui_chat import open_room, screenshot, wait_for_status

# The test's own API calls to the room routes bear the server token (the browser needs none); the server
# refuses the public placeholder.
ACCESS_TOKEN = "workspace-files-test-token"

DOWNLOAD_URL = re.compile(r"^/api/v1/attachments/att-[0-9a-f]{12}-[0-9a-f]{32}\?token=[A-Za-z0-9_%-]+$")

# Counts how often the upload bar is shown and the largest fraction it displayed, so a fast loopback
# upload that shows it for a few milliseconds is still seen.
WATCH_PROGRESS = """() => {
  const bar = document.querySelector('[data-testid="upload-progress"]');
  window.uploadBar = { shown: 0, largest: 0 };
  let wasHidden = bar.hidden;
  new MutationObserver(() => {
    if (wasHidden && !bar.hidden) window.uploadBar.shown += 1;
    wasHidden = bar.hidden;
    window.uploadBar.largest = Math.max(window.uploadBar.largest, Number(bar.value));
  }).observe(bar, { attributes: true, attributeFilter: ["hidden", "value"] });
}"""

# Builds a File from base64 bytes and hands it to the page the way a paste or a drop would.
CARRY_FILE = """([how, selector, name, type, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const target = document.querySelector(selector);
  const init = { bubbles: true, cancelable: true };
  if (how === "paste") {
    target.dispatchEvent(new ClipboardEvent("paste", { ...init, clipboardData: transfer }));
    return;
  }
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { ...init, dataTransfer: transfer }));
  }
}"""


@pytest.fixture
def workspace_server(live_state_factory) -> Iterator[WorkspaceServer]:
    """The shared UI server (test_workspace_ui.py), with an access token of its own in the config."""
    config = f'{CONFIG_TOML}\n[server]\naccess_token = "{ACCESS_TOKEN}"\n'
    with served_workspace(live_state_factory, config=config) as server:
        yield server


def png_bytes(width: int, height: int) -> bytes:
    """A valid RGB PNG of one colour, so the browser decodes it to a non-zero natural size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x2f\x5b\xd3" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def carry_file(page: Page, how: str, selector: str, name: str, media_type: str, data: bytes) -> None:
    page.evaluate(CARRY_FILE, [how, selector, name, media_type, base64.b64encode(data).decode()])


def message_with(page: Page, message_id: str):
    return page.locator(f'[data-testid="message-item"][data-message-id="{message_id}"]')


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {ACCESS_TOKEN}", "Accept": "application/json"}


def reply_count(count: int) -> re.Pattern[str]:
    return re.compile(rf"^{count} repl(y|ies)")


def send_reply(server: WorkspaceServer, room_id: str, root_id: str, sender_id: str, content: str) -> dict:
    relates_to = {"rel_type": "m.thread", "event_id": root_id}
    body = {"room_id": room_id, "sender_id": sender_id, "content": content, "relates_to": relates_to}
    return server.post("/api/v1/messages", body)


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_image_from_the_attach_button_loads_is_listed_in_files_and_goes_when_deleted(
    page, workspace_server, tmp_path: Path
):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("composer-attach").click()
    chooser.value.set_files([{"name": "diagram.png", "mimeType": "image/png", "buffer": png_bytes(640, 480)}])
    expect(page.get_by_test_id("composer-file-chip")).to_contain_text("diagram.png")
    page.get_by_test_id("composer-input").fill("the release diagram")
    with page.expect_response(lambda response: "/api/v1/attachments/" in response.url) as download:
        page.get_by_test_id("composer-send").click()

    assert download.value.status == 200
    assert download.value.headers["content-type"] == "image/png"
    [message] = workspace_server.messages_from(room_id, "u-admin")
    [attachment] = message["attachments"]
    image = message_with(page, message["id"]).get_by_test_id("message-attachment-image")
    expect(image).to_have_attribute("src", attachment["preview_url"])
    expect(image).to_have_attribute("alt", "diagram.png")
    page.wait_for_function("img => img.complete && img.naturalWidth === 640", arg=image.element_handle())
    box = image.bounding_box()
    assert box and box["width"] <= 320 and box["height"] <= 240
    expect(page.get_by_test_id("composer-file-chip")).to_have_count(0)
    screenshot(page, tmp_path, "attachment-image")

    # The room routes want a bearer, or the admin's own browser: this page asks for no token.
    page.get_by_test_id("room-files").click()
    item = page.get_by_test_id("room-file-item")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-attachment-id", attachment["id"])
    expect(item).to_contain_text("diagram.png")
    expect(item).to_contain_text("admin")
    with page.expect_download() as saved:
        item.get_by_test_id("room-file-download").click()
    assert saved.value.suggested_filename == "diagram.png"
    assert Path(saved.value.path()).read_bytes() == png_bytes(640, 480)
    page.get_by_test_id("room-files-query").fill("nothing-like-it")
    expect(item).to_have_count(0)
    page.get_by_test_id("room-files-query").fill("DIAGRAM")
    expect(item).to_have_count(1)
    screenshot(page, tmp_path, "room-files-panel")

    attachment_path = f"/api/v1/rooms/{room_id}/attachments/{attachment['id']}"
    deleted = workspace_server.api.delete(attachment_path, headers=bearer())
    assert deleted.status_code == 204, deleted.text
    expect(image).to_have_count(0)
    expect(message_with(page, message["id"])).to_contain_text("the release diagram")
    expect(item).to_have_count(0)


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_pasted_and_dropped_files_upload_with_the_progress_bar(page, workspace_server, tmp_path: Path):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)
    page.evaluate(WATCH_PROGRESS)

    notes = b"release notes\n" * 4096
    carry_file(page, "paste", '[data-testid="composer-input"]', "notes.txt", "text/plain", notes)
    expect(page.get_by_test_id("composer-file-chip")).to_contain_text("notes.txt")
    page.get_by_test_id("composer-send").click()

    card = page.get_by_test_id("message-attachment-file")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("notes.txt")
    expect(card).to_contain_text("56 KB")
    expect(card.get_by_role("link", name="Download notes.txt")).to_have_attribute("href", DOWNLOAD_URL)
    expect(page.get_by_test_id("upload-progress")).to_be_hidden()
    assert page.evaluate("window.uploadBar") == {"shown": 1, "largest": 1}

    carry_file(page, "drop", '[data-testid="message-list"]', "dropped.png", "image/png", png_bytes(48, 32))
    expect(page.get_by_test_id("composer-file-chip")).to_contain_text("dropped.png")
    page.get_by_test_id("composer-input").fill("dropped in")
    page.get_by_test_id("composer-send").click()

    expect(message_items(page, "dropped in").get_by_test_id("message-attachment-image")).to_have_count(1)
    assert page.evaluate("window.uploadBar") == {"shown": 2, "largest": 1}
    sent = workspace_server.messages_from(room_id, "u-admin")
    assert [[a["name"] for a in m["attachments"]] for m in sent] == [["notes.txt"], ["dropped.png"]]
    assert [m["content"] for m in sent] == ["", "dropped in"]
    screenshot(page, tmp_path, "pasted-and-dropped")


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_client_limits_refuse_files_before_sending_and_server_refusals_are_shown(page, workspace_server):
    open_workspace(page)

    def attach(files: list[dict]) -> None:
        with page.expect_file_chooser() as chooser:
            page.get_by_test_id("composer-attach").click()
        chooser.value.set_files(files)

    chips = page.get_by_test_id("composer-file-chip")
    error = page.get_by_test_id("composer-error")
    attach(
        [
            {"name": "a.txt", "mimeType": "text/plain", "buffer": b"one"},
            {"name": "a.txt", "mimeType": "text/plain", "buffer": b"two"},
            {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
        ]
    )
    expect(chips).to_have_count(1)
    expect(error).to_have_text(
        '"a.txt" not added: it is already attached. "empty.txt" not added: the file is empty.'
    )
    page.get_by_test_id("composer-file-remove").click()
    expect(chips).to_have_count(0)
    expect(page.get_by_test_id("composer-send")).to_be_disabled()

    attach([{"name": f"part-{i}.txt", "mimeType": "text/plain", "buffer": b"x" * (i + 1)} for i in range(11)])
    expect(chips).to_have_count(10)
    expect(error).to_have_text('"part-10.txt" not added: at most 10 files per message.')

    # What the server refuses is shown with its own text; the message and its files stay for another try.
    too_large = "attachment payload is too large: attachments exceed 67108864 bytes per message"
    refusal = json.dumps({"error": {"status": 413, "message": too_large}})
    page.route(
        "**/api/v1/messages",
        lambda route: route.fulfill(status=413, content_type="application/json", body=refusal),
    )
    page.get_by_test_id("composer-input").fill("ten parts")
    page.get_by_test_id("composer-send").click()
    expect(error).to_have_text("Not sent: " + too_large)
    expect(chips).to_have_count(10)
    expect(page.get_by_test_id("composer-input")).to_have_value("ten parts")
    expect(page.get_by_test_id("upload-progress")).to_be_hidden()


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_thread_reply_stays_out_of_the_timeline_and_the_stream_updates_the_open_panel(
    page, workspace_server, tmp_path: Path
):
    room_id = workspace_server.manager_room_id()
    root = workspace_server.send(room_id, "u-manager", "Plan the release")
    open_workspace(page)
    root_item = message_with(page, root["id"])
    expect(root_item).to_contain_text("Plan the release")

    root_item.hover()
    root_item.get_by_test_id("reply-in-thread").click()
    panel = page.get_by_test_id("thread-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id("thread-root")).to_contain_text("Plan the release")
    page.get_by_test_id("thread-composer-input").fill("I take the changelog")
    page.get_by_test_id("thread-composer-send").click()

    replies = page.get_by_test_id("thread-reply-list").get_by_test_id("thread-message")
    expect(replies).to_have_count(1)
    expect(replies).to_contain_text("I take the changelog")
    chip = root_item.get_by_test_id("thread-summary")
    expect(chip).to_have_text(reply_count(1))
    expect(message_items(page, "I take the changelog")).to_have_count(0)
    [stored] = workspace_server.get("/api/v1/rooms/" + room_id + "/threads/" + root["id"])["replies"]
    assert stored["relates_to"] == {"rel_type": "m.thread", "event_id": root["id"]}
    assert stored["sender_id"] == "u-admin"

    reply = send_reply(workspace_server, room_id, root["id"], "u-manager", "Then I write the notes")
    expect(replies).to_have_count(2)
    expect(replies.last).to_have_attribute("data-message-id", reply["id"])
    expect(chip).to_have_text(reply_count(2))
    # A later top-level message shows the stream was read past the reply, which never entered the timeline.
    workspace_server.send(room_id, "u-manager", "marker after the replies")
    expect(message_items(page, "marker after the replies")).to_have_count(1)
    expect(message_items(page, "Then I write the notes")).to_have_count(0)

    # Files dropped on the open panel go with the next reply, not with the room's composer.
    reply_list = '[data-testid="thread-reply-list"]'
    carry_file(page, "drop", reply_list, "sketch.png", "image/png", png_bytes(64, 48))
    expect(page.get_by_test_id("thread-composer-file-chip")).to_contain_text("sketch.png")
    expect(page.get_by_test_id("composer-file-chip")).to_have_count(0)
    page.get_by_test_id("thread-composer-send").click()
    expect(replies).to_have_count(3)
    expect(replies.last.get_by_test_id("message-attachment-image")).to_have_attribute("alt", "sketch.png")
    expect(chip).to_have_text(reply_count(3))
    expect(page.get_by_test_id("message-list").get_by_test_id("message-attachment-image")).to_have_count(0)
    screenshot(page, tmp_path, "thread-panel")

    page.get_by_test_id("thread-close").click()
    expect(panel).to_be_hidden()
    chip.click()
    expect(replies).to_have_count(3)


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_a_message_sent_again_under_its_id_is_replaced_in_place_and_leaves_when_it_becomes_a_reply(
    page, workspace_server
):
    workspace_server.post("/api/v1/agents", {"name": "Dora", "description": "writes release notes"})
    wait_for_status(workspace_server, "u-Dora", "running")
    [room] = [r for r in workspace_server.get("/api/v1/rooms") if r["is_direct"] and "u-Dora" in r["members"]]
    top = workspace_server.get("/api/v1/messages", room_id=room["id"])[-1]
    open_workspace(page)
    open_room(page, room["title"])

    # A runtime sends, then sends again under the same id (participants.md §3.6).
    def participant_send(body: dict) -> str:
        path = "/api/v1/channels/csgclaw/participants/u-Dora/messages"
        response = workspace_server.api.post(path, json={"room_id": room["id"], **body}, headers=bearer())
        assert response.status_code == 200, response.text
        return response.json()["message_id"]

    message_id = participant_send({"text": "first draft"})
    item = message_with(page, message_id)
    expect(item).to_contain_text("first draft")
    assert participant_send({"text": "second draft", "message_id": message_id}) == message_id
    expect(item).to_contain_text("second draft")
    expect(item).not_to_contain_text("first draft")

    assert participant_send({"text": "now a reply", "message_id": message_id, "thread_root_id": top["id"]})
    expect(item).to_have_count(0)
    expect(message_with(page, top["id"]).get_by_test_id("thread-summary")).to_have_text(reply_count(1))
