# ruff: noqa: F811  (the shared browser fixture is imported by name and requested as an argument)
"""The `/login` flow of security.md S4 in headless Chromium against `manage.py serve`.

The browser plays a remote user: every request it sends carries `X-Forwarded-For`, as through a reverse
proxy, so the server treats it as non-local (test_access_live.py also reaches the server from another
network namespace). The server and browser set-up is the workspace UI tests' (Debian's Chromium).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from im.tests.test_workspace_ui import (  # noqa: F401  (browser: the shared fixture, used by name)
    CONFIG_TOML,
    UI_TIMEOUT_MS,
    WorkspaceServer,
    browser,
    needs_chromium,
    script_errors,
    served_workspace,
)

pytestmark = [pytest.mark.live, needs_chromium]

TOKEN = "login-ui-server-token"
REMOTE_HEADERS = {"X-Forwarded-For": "198.51.100.23"}

expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture
def login_server(live_state_factory) -> Iterator[WorkspaceServer]:
    config = f'[server]\naccess_token = "{TOKEN}"\n\n{CONFIG_TOML}'
    with served_workspace(live_state_factory, config=config) as server:
        yield server


@pytest.fixture
def remote_page(browser: Browser, login_server: WorkspaceServer) -> Iterator[Page]:
    """A remote browser's page; the test fails if a script throws or logs an error (4xx answers expected)."""
    context = browser.new_context(base_url=login_server.base_url, extra_http_headers=REMOTE_HEADERS)
    page = context.new_page()
    problems = script_errors(page)
    yield page
    context.close()
    assert problems == []


def log_in(page: Page, token: str) -> None:
    page.get_by_test_id("login-token").fill(token)
    page.get_by_test_id("login-submit").click()


@pytest.mark.timeout(90)
def test_a_remote_browser_logs_in_with_the_token_uses_the_workspace_and_logs_out(remote_page, login_server):
    page = remote_page
    page.goto("/")
    expect(page).to_have_url(f"{login_server.base_url}/login?next=/")

    log_in(page, "not the token")
    expect(page.get_by_test_id("login-error")).to_have_text("wrong token or password")

    log_in(page, TOKEN)
    expect(page).to_have_url(f"{login_server.base_url}/")
    # The IM stream and the REST calls of the page now pass on the session cookie.
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    page.get_by_test_id("composer-input").fill("hello from afar")
    page.get_by_test_id("composer-send").click()
    room_id = login_server.manager_room_id()
    expect(page.get_by_test_id("message-item").filter(has_text="hello from afar")).to_have_count(1)
    assert [m["content"] for m in login_server.messages_from(room_id, "u-admin")] == ["hello from afar"]
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False

    page.goto("/login")
    page.get_by_test_id("logout-submit").click()
    expect(page.get_by_test_id("login-token")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(f"{login_server.base_url}/login?next=/")


@pytest.mark.timeout(90)
def test_a_foreign_next_lands_on_the_workspace(remote_page, login_server):
    page = remote_page
    page.goto("/login?next=http://evil.example/")

    log_in(page, TOKEN)

    expect(page).to_have_url(f"{login_server.base_url}/")
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
