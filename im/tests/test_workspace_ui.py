"""The IM workspace page (http-api.md §10.1): its route, and the page in headless Chromium on a live server.

The browser tests drive Debian's Chromium through Playwright (no browser download). The server is the
production entry point `manage.py serve`, because plain `daphne csgclaw_site.asgi:application` (the shared
`daphne_factory`) does not serve `/static/`, and the page is nothing without its script.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_MISSING = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=CHROMIUM_MISSING)

LOOPBACK = "127.0.0.1"
# Importing Django and binding takes a few seconds on a loaded CI box.
STARTUP_SECONDS = 30.0
STOP_SECONDS = 5.0
# Every UI expectation waits at most this long; a live update normally lands within a few 100 ms.
UI_TIMEOUT_MS = 15_000
CONFIG_TOML = """\
[models]
default = "csghub-lite.Qwen/Qwen3-0.6B-GGUF"

[models.providers.csghub-lite]
base_url = "http://127.0.0.1:11435/v1"
api_key = "local"
models = ["Qwen/Qwen3-0.6B-GGUF"]
"""
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

expect.set_options(timeout=UI_TIMEOUT_MS)


# --- the route, through Django's test client ---------------------------------------------------------


@pytest.mark.timeout(30)
def test_root_renders_the_workspace_shell_with_its_assets(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    # The entry module imports the others (native ES modules, no build step).
    assert '<script type="module" src="/static/im/workspace.js"></script>' in html
    assert '<link rel="stylesheet" href="/static/im/workspace.css">' in html
    assert '<link rel="stylesheet" href="/static/im/chat.css">' in html
    for test_id in (
        "room-list",
        "room-title",
        "message-list",
        "composer-input",
        "composer-send",
        "agent-list",
        "new-agent-name",
        "new-agent-description",
        "new-agent-submit",
        "new-room-title",
        "new-room-submit",
        "connection-status",
    ):
        assert f'data-testid="{test_id}"' in html, test_id


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_root_answers_other_methods_with_405(client, method):
    response = getattr(client, method)("/")

    assert response.status_code == 405
    assert response.content == b"method not allowed\n"


# --- live server and browser -------------------------------------------------------------------------


class WorkspaceServer:
    """`manage.py serve` on loopback, with a REST client for playing the other side of the chat."""

    def __init__(self, *, env: dict[str, str], home: Path) -> None:
        self.env = env
        self.log_path = home / "serve.log"
        self.port = _free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=self.base_url, trust_env=False, timeout=10.0)

    def start(self) -> None:
        """Serve on this server's port (again, after `stop`); fails the test with the log if it stays down."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--no-bootstrap", f"{LOOPBACK}:{self.port}"],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if self.api.get("/healthz").text == "ok":
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"manage.py serve did not become healthy\n--- server output\n{self.log()}", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def post(self, path: str, body: dict) -> dict:
        response = self.api.post(path, json=body, headers={"Accept": "application/json"})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(self, path: str, **params: str) -> list | dict:
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def messages_from(self, room_id: str, sender_id: str) -> list[dict]:
        return [m for m in self.get("/api/v1/messages", room_id=room_id) if m["sender_id"] == sender_id]

    def manager_room_id(self) -> str:
        [room] = [room for room in self.get("/api/v1/rooms") if room["title"] == "manager"]
        return room["id"]

    def send(self, room_id: str, sender_id: str, content: str) -> dict:
        return self.post("/api/v1/messages", {"room_id": room_id, "sender_id": sender_id, "content": content})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def workspace_server(request, live_state_factory) -> Iterator[WorkspaceServer]:
    """A fresh state (seeded IM, no agents) with a model config, served by `manage.py serve`.

    Indirect parametrisation passes extra environment variables for the server.
    """
    with served_workspace(live_state_factory, extra_env=getattr(request, "param", {})) as server:
        yield server


@contextmanager
def served_workspace(
    live_state_factory, *, config: str = CONFIG_TOML, extra_env: dict[str, str] | None = None
) -> Iterator[WorkspaceServer]:
    """`manage.py serve` on a fresh state (seeded IM, no agents) with `config` as its config.toml."""
    # The state's database is already migrated; skipping serve's own migrate saves a second per start.
    state = live_state_factory(extra_env={"CSGCLAW_AUTO_MIGRATE": "false", **(extra_env or {})})
    (state.home / "config.toml").write_text(config)
    server = WorkspaceServer(env=state.env, home=state.home)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.api.close()
        print(f"--- manage.py serve output ---\n{server.log()[-6000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def script_errors(page: Page) -> list[str]:
    """The list that collects what the page's scripts throw or log as errors, from now on.

    Chromium logs every 4xx answer as "Failed to load resource"; tests that provoke one expect it.
    """
    problems: list[str] = []

    def note_console(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("console", note_console)
    return problems


@pytest.fixture
def page(browser: Browser, workspace_server: WorkspaceServer) -> Iterator[Page]:
    """A fresh browser context; the test fails if the page's script throws or logs an error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=workspace_server.base_url)
    page = context.new_page()
    problems = script_errors(page)
    yield page
    context.close()
    assert problems == []


def open_workspace(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_test_id("connection-status")).to_have_text("live")


def message_items(page: Page, text: str):
    return page.get_by_test_id("message-list").get_by_test_id("message-item").filter(has_text=text)


def agent_item(page: Page, agent_id: str):
    return page.locator(f'[data-testid="agent-item"][data-agent-id="{agent_id}"]')


# --- page behaviour ----------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_page_loads_the_seeded_manager_room_and_goes_live(page, workspace_server):
    room_id = workspace_server.manager_room_id()

    open_workspace(page)

    rooms = page.get_by_test_id("room-list").get_by_test_id("room-item")
    expect(rooms).to_have_count(1)
    expect(rooms).to_have_attribute("data-room-id", room_id)
    expect(rooms).to_contain_text("manager")
    expect(rooms).to_contain_text("2 members")
    expect(rooms).to_contain_text("Bootstrap room created for admin and manager.")
    expect(page.get_by_test_id("room-title")).to_have_text("manager")
    [seed] = workspace_server.get("/api/v1/messages", room_id=room_id)
    messages = page.get_by_test_id("message-item")
    expect(messages).to_have_count(1)
    expect(messages).to_have_attribute("data-message-id", seed["id"])
    expect(messages).to_contain_text("Bootstrap room created for admin and manager.")
    expect(page.get_by_test_id("agent-list").get_by_test_id("agent-item")).to_have_count(0)


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_composer_message_is_shown_once_despite_the_stream_echo(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    page.get_by_test_id("composer-input").fill("hello from the browser")
    page.get_by_test_id("composer-send").click()

    expect(message_items(page, "hello from the browser")).to_have_count(1)
    expect(page.get_by_test_id("composer-input")).to_have_value("")
    # The stream delivers in seq order: once this later message is shown, the echo of ours was handled too.
    workspace_server.send(room_id, "u-manager", "marker after the echo")
    expect(message_items(page, "marker after the echo")).to_have_count(1)
    expect(message_items(page, "hello from the browser")).to_have_count(1)
    stored = workspace_server.messages_from(room_id, "u-admin")
    assert [m["content"] for m in stored] == ["hello from the browser"]
    assert UUID.match(stored[0]["client_msg_id"])


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_messages_and_rooms_from_other_clients_appear_live(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    message = workspace_server.send(room_id, "u-manager", "a reply from the manager")
    item = page.locator(f'[data-testid="message-item"][data-message-id="{message["id"]}"]')
    expect(item).to_contain_text("a reply from the manager")
    expect(page.get_by_test_id("room-item")).to_contain_text("a reply from the manager")

    room = workspace_server.post(
        "/api/v1/rooms", {"title": "ops", "creator_id": "u-admin", "member_ids": ["u-manager"]}
    )
    workspace_server.send(room["id"], "u-manager", "deploy is green")
    rooms = page.get_by_test_id("room-item")
    expect(rooms).to_have_count(2)
    # Newest activity first, with a preview of the last message; the open room stays open.
    expect(rooms.first).to_have_attribute("data-room-id", room["id"])
    expect(rooms.first).to_contain_text("manager: deploy is green")
    expect(page.get_by_test_id("room-title")).to_have_text("manager")


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_worker_created_through_the_form_becomes_running_and_can_be_stopped(page, workspace_server):
    open_workspace(page)
    page.get_by_test_id("new-agent-name").fill("Manager")
    page.get_by_test_id("new-agent-submit").click()
    # The answer's own text, from the JSON error body the page asks for.
    expect(page.get_by_test_id("new-agent-error")).to_have_text('name "Manager" is reserved')
    expect(page.get_by_test_id("agent-item")).to_have_count(0)

    page.get_by_test_id("new-agent-name").fill("Alice")
    page.get_by_test_id("new-agent-description").fill("test lead")
    page.get_by_test_id("new-agent-submit").click()

    alice = agent_item(page, "u-Alice")
    expect(alice).to_contain_text("Alice")
    expect(alice).to_contain_text("test lead")
    expect(alice.get_by_test_id("agent-status")).to_have_text("running")
    expect(page.get_by_test_id("new-agent-name")).to_have_value("")
    expect(page.get_by_test_id("new-agent-error")).to_be_hidden()
    # The worker's direct room arrived through room.created, with the admin's intro message.
    direct = page.get_by_test_id("room-item").filter(has_text="alice")
    expect(direct).to_contain_text("Write this down in your memory")

    alice.get_by_role("button", name="Stop").click()
    expect(alice.get_by_test_id("agent-status")).to_have_text("stopped")
    alice.get_by_role("button", name="Start").click()
    expect(alice.get_by_test_id("agent-status")).to_have_text("running")
    assert workspace_server.get("/api/v1/agents/u-Alice")["status"] == "running"


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_at_tags_render_as_chips_and_markup_stays_text(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    markup = '<b>this</b> <img src=x onerror="window.hit=1">'
    message = workspace_server.send(room_id, "u-manager", f'<at user_id="u-admin">admin</at> see {markup}')

    item = page.locator(f'[data-testid="message-item"][data-message-id="{message["id"]}"]')
    chip = item.locator(".mention")
    expect(chip).to_have_count(1)
    expect(chip).to_have_text("@admin")
    expect(item.locator(".msg-text")).to_have_text(f"@admin see {markup}")
    assert item.locator("b, img").count() == 0
    assert page.evaluate("window.hit") is None


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_mention_autocomplete_inserts_an_at_tag(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    composer = page.get_by_test_id("composer-input")
    composer.press_sequentially("please check @man")
    option = page.get_by_test_id("mention-option")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("manager")
    composer.press("Enter")
    expect(composer).to_have_value('please check <at user_id="u-manager">manager</at> ')
    composer.press("Enter")

    expect(message_items(page, "please check").locator(".mention")).to_have_text("@manager")
    [sent] = workspace_server.messages_from(room_id, "u-admin")
    assert sent["content"] == 'please check <at user_id="u-manager">manager</at>'
    assert sent["mentions"] == ["u-manager"]


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_new_room_form_and_invite(page, workspace_server):
    workspace_server.post("/api/v1/agents", {"name": "Bob"})
    open_workspace(page)
    expect(agent_item(page, "u-Bob")).to_be_visible()

    page.get_by_test_id("new-room-title").fill("planning")
    page.locator('[data-testid="new-room-member"][value="u-manager"]').check()
    page.get_by_test_id("new-room-submit").click()

    expect(page.get_by_test_id("room-title")).to_have_text("planning")
    expect(page.locator(".msg-event")).to_have_text(re.compile(r'admin created the room "planning"'))
    expect(page.locator(".room-item.active")).to_contain_text("2 members")

    page.get_by_test_id("invite-open").click()
    page.locator('[data-testid="invite-member"][value="u-Bob"]').check()
    page.get_by_test_id("invite-submit").click()

    expect(page.locator(".msg-event").last).to_contain_text("admin invited bob to join the room")
    expect(page.locator(".room-item.active")).to_contain_text("3 members")
    [room] = [room for room in workspace_server.get("/api/v1/rooms") if room["title"] == "planning"]
    assert room["members"] == ["u-admin", "u-manager", "u-Bob"]


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_deleted_user_disappears_with_their_messages_but_the_agent_stays(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    workspace_server.post("/api/v1/agents", {"name": "Carol"})
    workspace_server.send(room_id, "u-Carol", "carol was here")
    open_workspace(page)
    expect(message_items(page, "carol was here")).to_have_count(1)
    expect(page.get_by_test_id("room-item")).to_have_count(2)

    assert workspace_server.api.delete("/api/v1/users/u-Carol").status_code == 204

    expect(message_items(page, "carol was here")).to_have_count(0)
    # Her direct room fell below two members and was deleted with her.
    expect(page.get_by_test_id("room-item")).to_have_count(1)
    expect(agent_item(page, "u-Carol")).to_be_visible()


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_reset_frame_reloads_the_bootstrap(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    bootstrap_calls: list[str] = []

    def future_cursor_once(route: Route) -> None:
        # The first bootstrap claims a cursor the log never reached, so the stream answers with a reset.
        response = route.fetch()
        body = response.json()
        bootstrap_calls.append(route.request.url)
        if len(bootstrap_calls) == 1:
            body["last_event_id"] = 10**12
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/im/bootstrap", future_cursor_once)
    open_workspace(page)

    wait_for(page, lambda: len(bootstrap_calls) == 2)
    workspace_server.send(room_id, "u-manager", "after the reset")
    expect(message_items(page, "after the reset")).to_have_count(1)
    expect(page.get_by_test_id("connection-status")).to_have_text("live")


def wait_for(page: Page, condition: Callable[[], bool], seconds: float = UI_TIMEOUT_MS / 1000) -> None:
    """Polls `condition`; waiting through the page lets Playwright run route handlers meanwhile."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
@pytest.mark.parametrize("workspace_server", [{"CSGCLAW_SSE_MAX_LIFETIME": "1"}], indirect=True)
def test_stream_ends_are_resumed_without_losing_or_repeating_messages(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)
    states: list[str] = []
    page.expose_function("noteConnection", lambda text: states.append(text))
    page.evaluate(
        """() => new MutationObserver(() => window.noteConnection(
               document.querySelector('[data-testid="connection-status"]').textContent))
             .observe(document.querySelector('[data-testid="connection-status"]'),
                      {childList: true, characterData: true, subtree: true})"""
    )

    for n in range(4):
        workspace_server.send(room_id, "u-manager", f"through the reconnects {n}")
        # Each wait spans at least one end of the 1 s stream and its reconnect.
        page.wait_for_timeout(700)

    for n in range(4):
        expect(message_items(page, f"through the reconnects {n}")).to_have_count(1)
    expect(page.get_by_test_id("message-item")).to_have_count(5)
    # Planned ends reconnect at once with the last seen id; the indicator never leaves `live`.
    assert "reconnecting" not in states
    expect(page.get_by_test_id("connection-status")).to_have_text("live")


@pytest.mark.live
@pytest.mark.timeout(60)
@needs_chromium
def test_connection_status_follows_an_outage_and_the_page_catches_up(page, workspace_server):
    room_id = workspace_server.manager_room_id()
    open_workspace(page)

    workspace_server.stop()
    expect(page.get_by_test_id("connection-status")).to_have_text("reconnecting")

    workspace_server.start()
    workspace_server.send(room_id, "u-manager", "back after the outage")
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    expect(message_items(page, "back after the outage")).to_have_count(1)
