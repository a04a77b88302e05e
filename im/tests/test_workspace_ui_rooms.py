# ruff: noqa: F811  (the shared fixtures are imported by name and requested as arguments)
"""Switching rooms in headless Chromium: by the address, from an agent's card, with a draft per room and the
mention menu closed behind; and the new-room form's member list following the people as they come.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from im.tests.test_workspace_ui import (  # noqa: F401  (fixtures used by name)
    agent_item,
    browser,
    needs_chromium,
    open_workspace,
    page,
    workspace_server,
)
from im.tests.test_workspace_ui_chat import open_room


def active_room(page: Page):
    return page.locator(".room-item.active")


def go_to_room(page: Page, room_id: str) -> None:
    """Switches rooms the way a link or the back button does, without taking the focus off the composer."""
    page.evaluate("(roomId) => { window.location.hash = '#' + encodeURIComponent(roomId); }", room_id)


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_switching_rooms_keeps_a_draft_per_room_and_closes_the_mention_menu(page, workspace_server):
    manager_room = workspace_server.manager_room_id()
    ops = workspace_server.post(
        "/api/v1/rooms", {"title": "ops", "creator_id": "u-admin", "member_ids": ["u-manager"]}
    )
    open_workspace(page)
    open_room(page, "manager")
    composer = page.get_by_test_id("composer-input")
    composer.press_sequentially("ask @man")
    expect(page.get_by_test_id("mention-option")).to_have_count(1)

    go_to_room(page, ops["id"])

    expect(page.get_by_test_id("room-title")).to_have_text("ops")
    expect(active_room(page)).to_have_attribute("data-room-id", ops["id"])
    expect(page.get_by_test_id("mention-option")).to_have_count(0)
    expect(page.locator("#mention-menu")).to_be_hidden()
    expect(composer).to_have_value("")
    expect(composer).to_be_focused()
    composer.fill("ops draft")

    page.get_by_test_id("room-item").filter(has_text="manager").click()

    expect(page.get_by_test_id("room-title")).to_have_text("manager")
    expect(active_room(page)).to_have_attribute("data-room-id", manager_room)
    expect(composer).to_have_value("ask @man")
    assert page.evaluate("window.location.hash") == "#" + manager_room
    open_room(page, "ops")
    expect(composer).to_have_value("ops draft")


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_open_chat_on_an_agent_card_opens_its_direct_room(page, workspace_server):
    workspace_server.post("/api/v1/agents", {"name": "Bob"})
    [direct] = [room for room in workspace_server.get("/api/v1/rooms") if room["title"] == "bob"]
    open_workspace(page)
    open_room(page, "manager")

    agent_item(page, "u-Bob").get_by_role("button", name="Open chat").click()

    expect(page.get_by_test_id("room-title")).to_have_text("bob")
    expect(active_room(page)).to_have_attribute("data-room-id", direct["id"])
    expect(page.get_by_test_id("message-item").filter(has_text="Write this down")).to_have_count(1)
    expect(page.get_by_test_id("composer-input")).to_be_focused()


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_people_created_elsewhere_join_the_new_room_member_list(page, workspace_server):
    open_workspace(page)
    members = page.get_by_test_id("new-room-member")
    expect(members).to_have_count(1)
    expect(members).to_have_attribute("value", "u-manager")

    workspace_server.post("/api/v1/agents", {"name": "Gus"})

    expect(agent_item(page, "u-Gus")).to_be_visible()
    expect(members).to_have_count(2)
    page.locator('[data-testid="new-room-member"][value="u-Gus"]').check()
    page.get_by_test_id("new-room-title").fill("with gus")
    page.get_by_test_id("new-room-submit").click()
    expect(page.get_by_test_id("room-title")).to_have_text("with gus")
    [room] = [room for room in workspace_server.get("/api/v1/rooms") if room["title"] == "with gus"]
    assert room["members"] == ["u-admin", "u-Gus"]
