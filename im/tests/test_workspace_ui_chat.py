# ruff: noqa: F811  (the shared fixtures are imported by name and requested as arguments)
"""The workspace's chat in headless Chromium: notices for agents that cannot answer, "is working…",
markdown that stays inert when hostile, unread counts, and the 390 px layout (issue 11, items 3 and 4).

Each test saves screenshots under its pytest tmp dir and, when `CSGCLAW_TEST_ARTIFACTS` is set, copies
them there too; the paths are printed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from im.tests.test_workspace_ui import (  # noqa: F401  (fixtures used by name)
    WorkspaceServer,
    agent_item,
    browser,
    message_items,
    needs_chromium,
    open_workspace,
    page,
    workspace_server,
)

ARTIFACTS_ENV = "CSGCLAW_TEST_ARTIFACTS"
PROVISION_SECONDS = 15.0
NARROW = {"width": 390, "height": 844}
START_FAILED = "start agent: fake sandbox: start failed"


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    # Finished transitions: a drawer is shown where it ends up, not halfway in.
    page.screenshot(path=str(path), animations="disabled")
    print(f"screenshot: {path}")
    target = os.environ.get(ARTIFACTS_ENV, "").strip()
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        copy = Path(target) / path.name
        shutil.copyfile(path, copy)
        print(f"screenshot copy: {copy}")
    return path


def wait_for_status(server: WorkspaceServer, agent_id: str, status: str) -> dict:
    deadline = time.monotonic() + PROVISION_SECONDS
    while True:
        agent = server.get(f"/api/v1/agents/{agent_id}")
        if agent["status"] == status or time.monotonic() > deadline:
            assert agent["status"] == status, agent
            return agent
        time.sleep(0.1)


def open_room(page: Page, title: str) -> None:
    page.get_by_test_id("room-item").filter(has_text=title).first.click()
    expect(page.get_by_test_id("room-title")).to_have_text(title)


def send(page: Page, text: str) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("composer-send").click()
    expect(message_items(page, text)).to_have_count(1)


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
@pytest.mark.parametrize("workspace_server", [{"CSGCLAW_FAKE_SANDBOX_FAIL": "start"}], indirect=True)
def test_writing_to_an_agent_that_cannot_receive_shows_why_with_start_and_logs(
    page, workspace_server, tmp_path
):
    # The fake box is made running, but every later start fails: stop it, and the next start gives a 502.
    workspace_server.post("/api/v1/agents", {"name": "Dora", "description": "writes release notes"})
    wait_for_status(workspace_server, "u-Dora", "running")
    assert workspace_server.api.post("/api/v1/agents/u-Dora/stop").status_code == 200
    open_workspace(page)
    open_room(page, "dora")
    expect(page.get_by_test_id("agent-notice")).to_have_count(0)

    send(page, "are you there?")

    notice = page.get_by_test_id("agent-notice")
    expect(notice).to_have_count(1)
    expect(notice).to_have_attribute("data-agent-id", "u-Dora")
    expect(notice).to_contain_text("Dora cannot answer: it is stopped.")
    notice.get_by_role("button", name="Logs").click()
    # The fake box's log lists its operations, so the box exists and its log was read.
    expect(notice.get_by_test_id("agent-logs")).to_contain_text("fake box dora stop")

    notice.get_by_role("button", name="Start").click()
    expect(notice).to_contain_text("Dora cannot answer: it failed.")
    expect(notice.get_by_test_id("agent-notice-reason")).to_have_text(START_FAILED)
    assert notice.inner_text().count(START_FAILED) == 1
    screenshot(page, tmp_path, "failed-agent-notice")
    card = agent_item(page, "u-Dora")
    expect(card.get_by_test_id("agent-status")).to_have_text("failed")
    expect(card.get_by_test_id("agent-detail")).to_have_text(START_FAILED)
    # The 502's text is the new status_detail: it is shown once on the card, not again as an error.
    expect(card.get_by_test_id("agent-error")).to_have_count(0)
    assert card.inner_text().count(START_FAILED) == 1
    assert workspace_server.get("/api/v1/agents/u-Dora")["status_detail"] == START_FAILED

    card.get_by_role("button", name="Logs").click()
    expect(card.get_by_test_id("agent-logs")).to_contain_text("fake box dora stop")
    screenshot(page, tmp_path, "failed-agent-card-logs")
    notice.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_test_id("agent-notice")).to_have_count(0)


@pytest.mark.live
@pytest.mark.timeout(90)
@needs_chromium
def test_working_indicator_follows_messages_to_a_running_agent(page, workspace_server, tmp_path):
    workspace_server.post("/api/v1/agents", {"name": "Eve", "description": "writes release notes"})
    wait_for_status(workspace_server, "u-Eve", "running")
    [room] = [room for room in workspace_server.get("/api/v1/rooms") if room["title"] == "eve"]
    open_workspace(page)
    open_room(page, "eve")

    # The admin's automatic intro reached Eve, so she is working on it; it is marked as automatic.
    intro = message_items(page, "Write this down in your memory")
    expect(intro.get_by_test_id("message-automatic")).to_have_text("automatic")
    expect(intro).to_contain_text("Your job: writes release notes.")
    working = page.get_by_test_id("working-indicator")
    expect(working).to_have_text("Eve is working…")
    expect(working).to_have_attribute("data-agent-id", "u-Eve")
    screenshot(page, tmp_path, "working-indicator")

    workspace_server.send(room["id"], "u-Eve", "Noted.")
    expect(message_items(page, "Noted.")).to_have_count(1)
    expect(working).to_have_count(0)

    send(page, "please draft the notes")
    expect(working).to_have_text("Eve is working…")
    # A reload rebuilds it from the history.
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    expect(working).to_have_text("Eve is working…")

    # Never for an agent that is not running.
    assert workspace_server.api.post("/api/v1/agents/u-Eve/stop").status_code == 200
    expect(agent_item(page, "u-Eve").get_by_test_id("agent-status")).to_have_text("stopped")
    expect(working).to_have_count(0)
    expect(page.get_by_test_id("agent-notice")).to_have_count(0)


HOSTILE = (
    "## Plan\n\n"
    "Use **bold** and `inline code`, see https://example.com/docs and [the guide](https://example.org/g).\n\n"
    "```python\nprint('copy me')\n```\n\n"
    '[bad link](javascript:window.hit=1) <img src=x onerror="window.hit=2"> '
    "<script>window.hit=3</script> ![pixel](http://127.0.0.1:9/pixel.png) "
    '<a href="javascript:window.hit=4">raw</a> '
    '<at user_id="u-admin">admin</at> please look'
)


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_markdown_renders_and_hostile_markup_stays_inert(page, workspace_server, tmp_path):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    message = workspace_server.send(room_id, "u-manager", HOSTILE)

    item = page.locator(f'[data-testid="message-item"][data-message-id="{message["id"]}"]')
    text = item.locator(".msg-text")
    expect(text.locator("h2")).to_have_text("Plan")
    expect(text.locator("strong")).to_have_text("bold")
    expect(text.locator("p code")).to_have_text("inline code")
    # With images off, `![pixel](url)` is a plain link: nothing loads from where a message points.
    links = text.locator("a")
    expect(links).to_have_count(3)
    for href in ("https://example.com/docs", "https://example.org/g", "http://127.0.0.1:9/pixel.png"):
        link = text.locator(f'a[href="{href}"]')
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(text.locator(".mention")).to_have_text("@admin")
    # Raw HTML is shown as text, and nothing of it became an element.
    expect(text).to_contain_text('<img src=x onerror="window.hit=2">')
    expect(text).to_contain_text("<script>window.hit=3</script>")
    assert item.locator("img, script, iframe, [onerror]").count() == 0
    assert item.locator('[href^="javascript"]').count() == 0
    assert page.evaluate("window.hit") is None

    block = text.locator(".code-block")
    expect(block.locator("pre")).to_have_text("print('copy me')")
    block.get_by_role("button", name="Copy").click()
    expect(block.get_by_test_id("code-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "print('copy me')\n"
    screenshot(page, tmp_path, "markdown")


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_unread_counts_per_room_survive_a_reload(page, workspace_server, tmp_path):
    manager_room = workspace_server.manager_room_id()
    open_workspace(page)
    ops = workspace_server.post(
        "/api/v1/rooms", {"title": "ops", "creator_id": "u-admin", "member_ids": ["u-manager"]}
    )
    workspace_server.send(ops["id"], "u-manager", "deploy started")
    workspace_server.send(ops["id"], "u-manager", "deploy is green")

    def unread(room_id: str):
        return page.locator(
            f'[data-testid="room-item"][data-room-id="{room_id}"] [data-testid="room-unread"]'
        )

    expect(unread(ops["id"])).to_have_text("2")
    # The open room stays read; my own messages never count.
    expect(unread(manager_room)).to_have_count(0)
    send(page, "thanks")
    expect(unread(manager_room)).to_have_count(0)
    screenshot(page, tmp_path, "unread-counts")

    open_room(page, "ops")
    expect(unread(ops["id"])).to_have_count(0)
    workspace_server.send(manager_room, "u-manager", "one more thing")
    expect(unread(manager_room)).to_have_text("1")

    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    expect(unread(manager_room)).to_have_text("1")
    expect(unread(ops["id"])).to_have_count(0)


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_narrow_layout_has_no_horizontal_scroll_and_a_room_drawer(page, workspace_server, tmp_path):
    page.set_viewport_size(NARROW)
    room_id = workspace_server.manager_room_id()
    workspace_server.post("/api/v1/agents", {"name": "Fay"})
    workspace_server.send(
        room_id,
        "u-manager",
        "A long link https://example.com/" + "a" * 300 + " and a long word " + "b" * 200 + "\n\n"
        "```\n" + "x = 1  # " + "c" * 300 + "\n```\n\n| a | b |\n|---|---|\n| " + "d" * 200 + " | e |",
    )
    open_workspace(page)
    expect(message_items(page, "A long link")).to_have_count(1)

    def scroll_width() -> int:
        return page.evaluate("document.documentElement.scrollWidth")

    assert scroll_width() <= NARROW["width"]
    rooms = page.get_by_test_id("room-list")
    expect(rooms).not_to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_be_visible()
    screenshot(page, tmp_path, "narrow-conversation")

    page.get_by_test_id("rooms-toggle").click()
    expect(rooms).to_be_visible()
    assert scroll_width() <= NARROW["width"]
    screenshot(page, tmp_path, "narrow-rooms-drawer")
    page.get_by_test_id("room-item").filter(has_text="fay").click()
    expect(page.get_by_test_id("room-title")).to_have_text("fay")
    expect(rooms).not_to_be_visible()

    page.get_by_test_id("agents-toggle").click()
    expect(agent_item(page, "u-Fay")).to_be_visible()
    assert scroll_width() <= NARROW["width"]
    screenshot(page, tmp_path, "narrow-agents-drawer")
    page.keyboard.press("Escape")
    expect(agent_item(page, "u-Fay")).not_to_be_visible()
