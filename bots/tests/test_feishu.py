"""The Feishu relay (http-api.md §8, events.md §4): Open API client, send endpoint, relay stream."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async

from agents.models import Agent
from bots.bridge.cursors import StreamCursorKind
from bots.feishu import client as feishu
from bots.feishu.client import (
    BOT_INFO_PATH,
    MESSAGES_PATH,
    TOKEN_PATH,
    FeishuBotInfo,
    FeishuClient,
    FeishuError,
    feishu_app_configured,
    feishu_bot_info,
    feishu_open_id,
    feishu_send_text,
)
from core.config import clear_config_cache
from im.models import Event, EventRecipient, EventStream, StreamCursor
from im.realtime.eventlog import event_newest_seq
from im.tests.factories import error_text, make_agent

FEISHU = "https://feishu.test"
TOKEN = "feishu-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEND_PATH = "/api/v1/channels/feishu/messages"
CONNECTED = b": connected\n\n"
PING = b": ping\n\n"
MESSAGE_KEYS = ["id", "sender_id", "kind", "content", "created_at", "mentions"]

# app_id → (open_id, app_name) as the fake Feishu knows them.
FEISHU_BOTS = {
    "cli_manager": ("ou_manager", "Manager Bot"),
    "cli_dev": ("ou_dev", "Dev Bot"),
    "cli_qa": ("ou_qa", "QA Bot"),
}
APPS = {
    "u-manager": ("cli_manager", "manager-secret"),
    "u-dev": ("cli_dev", "dev-secret"),
    "u-qa": ("cli_qa", "qa-secret"),
}


def feishu_tables(apps: dict[str, tuple[str, str]]) -> str:
    tables = ['[channels.feishu]\nadmin_open_id = "ou_admin"\n']
    for bot_id, (app_id, app_secret) in apps.items():
        tables.append(f'[channels.feishu.{bot_id}]\napp_id = "{app_id}"\napp_secret = "{app_secret}"\n')
    return "\n".join(tables)


@pytest.fixture
def write_config(settings, tmp_path) -> Iterator[Any]:
    """`write_config(apps)` writes this test's config.toml with those Feishu app tables."""
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_FEISHU_BASE_URL = FEISHU

    def write(apps: dict[str, tuple[str, str]]) -> None:
        settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{TOKEN}"\n\n' + feishu_tables(apps))
        clear_config_cache()

    yield write
    clear_config_cache()


@pytest.fixture(autouse=True)
def configured(write_config, settings) -> None:
    write_config(APPS)
    # Streams outlive a slow CI box's test.
    settings.CSGCLAW_SSE_MAX_LIFETIME = 30


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> FakeClock:
    """A fresh client per test (no cache carries over), on a clock the test moves."""
    fake = FakeClock()
    monkeypatch.setattr(feishu, "client", FeishuClient(clock=fake))
    return fake


class FakeFeishu:
    """The three Open API endpoints: a token per app, bot info per token, and message sends."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.expire = 7200
        # Feishu's message ids: om_1, om_2, … ("" makes Feishu answer without one).
        self.message_id_prefix = "om_"
        self.token = router.post(FEISHU + TOKEN_PATH).mock(side_effect=self._token)
        self.info = router.get(FEISHU + BOT_INFO_PATH).mock(side_effect=self._info)
        self.send = router.post(FEISHU + MESSAGES_PATH).mock(side_effect=self._send)

    def _token(self, request: httpx.Request) -> httpx.Response:
        app_id = json.loads(request.content)["app_id"]
        return httpx.Response(
            200,
            json={"code": 0, "msg": "ok", "tenant_access_token": f"t-{app_id}", "expire": self.expire},
        )

    def _info(self, request: httpx.Request) -> httpx.Response:
        app_id = request.headers["authorization"].removeprefix("Bearer t-")
        open_id, app_name = FEISHU_BOTS[app_id]
        return httpx.Response(
            200, json={"code": 0, "msg": "ok", "bot": {"open_id": open_id, "app_name": app_name}}
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        number = self.send.call_count + 1
        data = {"message_id": f"{self.message_id_prefix}{number}"} if self.message_id_prefix else {}
        return httpx.Response(200, json={"code": 0, "msg": "success", "data": data})

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(call.request.content) for call in self.send.calls]


@pytest.fixture
def fake_feishu() -> Iterator[FakeFeishu]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeFeishu(router)


def feishu_failure(code: int, msg: str) -> httpx.Response:
    return httpx.Response(200, json={"code": code, "msg": msg})


# --- the Open API client -------------------------------------------------------------------------------


def test_bot_info_asks_feishu_with_the_apps_tenant_token(fake_feishu):
    info = feishu_bot_info("u-dev")

    assert info == FeishuBotInfo(open_id="ou_dev", app_name="Dev Bot")
    assert json.loads(fake_feishu.token.calls.last.request.content) == {
        "app_id": "cli_dev",
        "app_secret": "dev-secret",
    }
    assert fake_feishu.info.calls.last.request.headers["authorization"] == "Bearer t-cli_dev"


def test_the_token_is_cached_per_app_until_60_seconds_before_expiry(fake_feishu, clock):
    feishu_send_text(bot_id="u-dev", chat_id="oc_alpha", text="one", uuid="msg-1")
    feishu_send_text(bot_id="u-qa", chat_id="oc_alpha", text="two", uuid="msg-2")
    clock.now += 7200 - 60 - 1
    feishu_send_text(bot_id="u-dev", chat_id="oc_alpha", text="three", uuid="msg-3")
    assert fake_feishu.token.call_count == 2

    clock.now += 1
    feishu_send_text(bot_id="u-dev", chat_id="oc_alpha", text="four", uuid="msg-4")
    assert fake_feishu.token.call_count == 3


def test_bot_info_is_cached_for_ten_minutes(fake_feishu, clock):
    feishu_bot_info("u-dev")
    clock.now += 599
    feishu_bot_info("u-dev")
    assert fake_feishu.info.call_count == 1

    clock.now += 1
    assert feishu_bot_info("u-dev").open_id == "ou_dev"
    assert fake_feishu.info.call_count == 2


def test_changed_credentials_are_not_served_from_the_cache(fake_feishu, write_config):
    feishu_bot_info("u-dev")
    write_config({**APPS, "u-dev": ("cli_qa", "qa-secret")})

    assert feishu_bot_info("u-dev").open_id == "ou_qa"
    assert fake_feishu.token.call_count == 2


def test_concurrent_callers_fetch_one_token_and_one_bot_info(fake_feishu):
    slow_token = fake_feishu.token.side_effect

    def token_after_a_while(request: httpx.Request) -> httpx.Response:
        time.sleep(0.1)
        return slow_token(request)

    fake_feishu.token.side_effect = token_after_a_while
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(feishu_bot_info("u-dev").open_id)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["ou_dev"] * 8
    assert (fake_feishu.token.call_count, fake_feishu.info.call_count) == (1, 1)


def test_send_text_posts_a_text_message_to_the_chat_with_the_uuid(fake_feishu):
    message_id = feishu_send_text(bot_id="u-dev", chat_id="oc_alpha", text='hi "there"\n你好', uuid="msg-9")

    assert message_id == "om_1"
    request = fake_feishu.send.calls.last.request
    assert request.url.params["receive_id_type"] == "chat_id"
    assert request.headers["authorization"] == "Bearer t-cli_dev"
    assert json.loads(request.content) == {
        "receive_id": "oc_alpha",
        "msg_type": "text",
        "content": json.dumps({"text": 'hi "there"\n你好'}, ensure_ascii=False),
        "uuid": "msg-9",
    }


@pytest.mark.parametrize(
    ("route", "call", "text"),
    [
        ("token", lambda: feishu_bot_info("u-dev"), "feishu tenant token: code 10014: app secret invalid"),
        ("info", lambda: feishu_bot_info("u-dev"), "feishu bot info: code 10014: app secret invalid"),
        (
            "send",
            lambda: feishu_send_text(bot_id="u-dev", chat_id="oc_x", text="hi", uuid="msg-1"),
            "feishu send text: code 10014: app secret invalid",
        ),
    ],
)
def test_a_nonzero_code_is_an_error_naming_the_call(fake_feishu, route, call, text):
    getattr(fake_feishu, route).side_effect = None
    getattr(fake_feishu, route).return_value = feishu_failure(10014, "app secret invalid")

    with pytest.raises(FeishuError) as raised:
        call()

    assert str(raised.value) == text


def test_a_code_on_an_http_error_status_is_still_reported_as_the_code(fake_feishu):
    fake_feishu.info.side_effect = None
    fake_feishu.info.return_value = httpx.Response(400, json={"code": 99991663, "msg": "invalid token"})

    with pytest.raises(FeishuError, match=r"^feishu bot info: code 99991663: invalid token$"):
        feishu_bot_info("u-dev")


def test_a_transport_failure_is_an_error_naming_the_call(fake_feishu):
    fake_feishu.token.side_effect = httpx.ConnectError("connection refused")

    with pytest.raises(FeishuError) as raised:
        feishu_bot_info("u-dev")

    assert str(raised.value) == "feishu tenant token: connection refused"


def test_a_failed_token_call_is_not_cached(fake_feishu):
    fake_feishu.token.side_effect = [feishu_failure(1, "busy"), fake_feishu.token.side_effect]

    with pytest.raises(FeishuError):
        feishu_bot_info("u-dev")
    assert feishu_bot_info("u-dev").open_id == "ou_dev"


@pytest.mark.parametrize(
    ("app", "text"),
    [
        (("", "dev-secret"), 'feishu app_id is required for "u-dev"'),
        (("cli_dev", ""), 'feishu app_secret is required for "u-dev"'),
        (("", ""), 'feishu app_id is required for "u-dev"'),
    ],
)
def test_an_incomplete_app_is_an_error_before_any_call(fake_feishu, write_config, app, text):
    write_config({"u-dev": app})

    with pytest.raises(FeishuError) as raised:
        feishu_bot_info("u-dev")

    assert str(raised.value) == text
    assert fake_feishu.token.call_count == 0
    assert feishu_app_configured("u-dev")


def test_open_id_of_an_unconfigured_bot_is_its_id(fake_feishu):
    assert not feishu_app_configured("u-nobody")
    assert feishu_open_id("u-nobody") == "u-nobody"
    assert feishu_open_id("u-dev") == "ou_dev"
    assert fake_feishu.info.call_count == 1


# --- POST /api/v1/channels/feishu/messages -------------------------------------------------------------


def post_send(client, body: Any, **headers: str):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(SEND_PATH, data=data, content_type="text/plain", headers={**AUTH, **headers})


def feishu_events() -> list[Event]:
    return list(Event.objects.filter(stream=EventStream.FEISHU).order_by("seq"))


@pytest.mark.django_db
def test_send_with_a_mention_answers_201_and_relays_to_the_mentioned_bot(client, fake_feishu):
    response = post_send(
        client,
        {
            "room_id": " oc_alpha ",
            "sender_id": "u-manager",
            "content": " please review ",
            "mention_id": "u-dev",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert list(body) == MESSAGE_KEYS
    assert body["id"] == "om_1"
    assert body["sender_id"] == "ou_manager"
    assert body["kind"] == "message"
    assert body["content"] == "please review"
    assert body["mentions"] == ["ou_dev"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", body["created_at"])
    (sent,) = fake_feishu.sent()
    assert sent["receive_id"] == "oc_alpha"
    assert json.loads(sent["content"]) == {"text": '<at user_id="ou_dev">u-dev</at> please review'}
    assert re.fullmatch(r"msg-\d{19}", sent["uuid"])
    assert fake_feishu.send.calls.last.request.headers["authorization"] == "Bearer t-cli_manager"

    (event,) = feishu_events()
    assert (event.type, event.room_id, event.message_id) == ("message.created", "oc_alpha", "om_1")
    assert event.payload == {"type": "message.created", "room_id": "oc_alpha", "message": body}
    assert list(event.recipients.values_list("recipient_id", "mentioned")) == [("ou_dev", True)]


@pytest.mark.django_db
def test_send_without_a_mention_is_not_relayed(client, fake_feishu):
    response = post_send(client, {"room_id": "oc_alpha", "sender_id": "u-dev", "content": "status update"})

    assert response.status_code == 201
    assert response.json()["mentions"] == []
    assert response.json()["sender_id"] == "ou_dev"
    assert json.loads(fake_feishu.sent()[0]["content"]) == {"text": "status update"}
    assert feishu_events() == []


@pytest.mark.django_db
def test_a_sender_without_an_app_sends_through_the_manager_app(client, fake_feishu):
    response = post_send(client, {"room_id": "oc_alpha", "sender_id": "u-worker", "content": "hi"})

    assert response.status_code == 201
    assert response.json()["sender_id"] == "ou_manager"
    assert fake_feishu.send.calls.last.request.headers["authorization"] == "Bearer t-cli_manager"


@pytest.mark.django_db
def test_without_a_feishu_message_id_the_uuid_is_the_id(client, fake_feishu):
    fake_feishu.message_id_prefix = ""

    response = post_send(
        client, {"room_id": "oc_alpha", "sender_id": "u-dev", "content": "hi", "mention_id": "u-qa"}
    )

    assert response.status_code == 201
    assert response.json()["id"] == fake_feishu.sent()[0]["uuid"]
    assert feishu_events()[0].message_id == response.json()["id"]


FULL_BODY = {"room_id": "oc_alpha", "sender_id": "u-dev", "content": "hi", "mention_id": "u-qa"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("", "decode request: EOF"),
        ("[1]", "decode request: body must be a JSON object"),
        ({**FULL_BODY, "room_id": 7}, 'decode request: field "room_id" must be a string'),
        ({**FULL_BODY, "mention_id": ["u-qa"]}, 'decode request: field "mention_id" must be a string'),
        ({**FULL_BODY, "room_id": " ", "sender_id": "", "content": ""}, "room_id is required"),
        ({**FULL_BODY, "sender_id": " ", "content": "", "mention_id": "u-ghost"}, "sender_id is required"),
        ({**FULL_BODY, "content": "  ", "mention_id": "u-ghost"}, "content is required"),
        ({**FULL_BODY, "mention_id": "u-ghost"}, 'feishu app is not configured for mention "u-ghost"'),
    ],
)
def test_send_checks_in_order(client, fake_feishu, body, text):
    response = post_send(client, body)

    assert response.status_code == 400
    assert error_text(response) == text
    assert fake_feishu.send.call_count == 0
    assert feishu_events() == []


@pytest.mark.django_db
def test_a_null_or_blank_mention_id_is_no_mention(client, fake_feishu):
    for mention_id in (None, "  "):
        response = post_send(client, {**FULL_BODY, "mention_id": mention_id})

        assert response.status_code == 201
        assert response.json()["mentions"] == []
    assert feishu_events() == []


@pytest.mark.django_db
def test_decode_errors_start_with_the_prefix(client, fake_feishu):
    response = post_send(client, '{"room_id": ')

    assert response.status_code == 400
    assert error_text(response).startswith("decode request: ")


@pytest.mark.django_db
def test_no_sender_app_and_no_manager_app_comes_before_the_mention_check(client, fake_feishu, write_config):
    write_config({"u-dev": APPS["u-dev"]})

    response = post_send(
        client, {"room_id": "oc_alpha", "sender_id": "u-worker", "content": "hi", "mention_id": "u-ghost"}
    )

    assert response.status_code == 400
    assert error_text(response) == 'feishu app is not configured for "u-manager"'


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("apps", "failing_route", "text"),
    [
        ({**APPS, "u-dev": ("cli_dev", "")}, None, 'feishu app_secret is required for "u-dev"'),
        ({**APPS, "u-qa": ("", "qa-secret")}, None, 'feishu app_id is required for "u-qa"'),
        (APPS, "token", "feishu tenant token: code 10014: app secret invalid"),
        (APPS, "info", "feishu bot info: code 10014: app secret invalid"),
        (APPS, "send", "feishu send text: code 10014: app secret invalid"),
    ],
)
def test_feishu_failures_are_400_with_their_text(
    client, fake_feishu, write_config, apps, failing_route, text
):
    write_config(apps)
    if failing_route:
        route = getattr(fake_feishu, failing_route)
        route.side_effect = None
        route.return_value = feishu_failure(10014, "app secret invalid")

    response = post_send(client, FULL_BODY)

    assert response.status_code == 400
    assert error_text(response) == text
    assert feishu_events() == []


@pytest.mark.django_db
def test_send_method_and_size_come_first(client, fake_feishu):
    assert client.get(SEND_PATH).status_code == 405
    assert client.put(SEND_PATH, data="not json").status_code == 405
    too_large = json.dumps({**FULL_BODY, "content": "x" * (1024 * 1024)})

    response = post_send(client, too_large)

    assert response.status_code == 413
    assert error_text(response) == "request body too large"


@pytest.mark.django_db
def test_send_errors_are_json_when_asked(client, fake_feishu):
    response = post_send(client, {**FULL_BODY, "room_id": ""}, Accept="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": "room_id is required"}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer wrong", "bearer " + TOKEN, f"Bearer {TOKEN} ", "Bearer agent-own-token"],
)
def test_send_needs_the_server_token(client, fake_feishu, authorization):
    make_agent(agent_id="u-dev", name="dev")
    Agent.objects.filter(pk="u-dev").update(api_token="agent-own-token")

    response = post_send(client, FULL_BODY, Authorization=authorization)

    assert (response.status_code, error_text(response)) == (401, "unauthorized")
    assert fake_feishu.sent() == []
    assert feishu_events() == []


@pytest.mark.django_db
def test_the_401_comes_before_the_body_is_read(client, fake_feishu):
    too_large = json.dumps({**FULL_BODY, "content": "x" * (1024 * 1024)})

    response = post_send(client, too_large, Authorization="")

    assert response.status_code == 401


@pytest.mark.django_db
def test_with_auth_off_the_send_needs_no_token(client, fake_feishu, settings):
    settings.CSGCLAW_CONFIG.write_text(
        f'[server]\naccess_token = "{TOKEN}"\nno_auth = true\n\n' + feishu_tables(APPS)
    )
    clear_config_cache()

    response = post_send(client, FULL_BODY, Authorization="")

    assert response.status_code == 201, response.content


# --- GET /api/v1/channels/feishu/bots/{id}/events -------------------------------------------------------


def relay_path(bot_id: str) -> str:
    return f"/api/v1/channels/feishu/bots/{bot_id}/events"


async def asend(async_client, **body: str) -> dict[str, Any]:
    response = await async_client.post(
        SEND_PATH, data=json.dumps(body), content_type="application/json", headers=AUTH
    )
    assert response.status_code == 201, response.content
    return response.json()


async def open_relay(asgi_stream, bot_id: str, *, from_now: bool = True):
    headers = dict(AUTH)
    if from_now:
        headers["Last-Event-ID"] = str(await sync_to_async(event_newest_seq)())
    stream = await asgi_stream(relay_path(bot_id), headers=headers)
    assert stream.status == 200, stream.start
    assert stream.headers["content-type"] == "text/event-stream"
    assert await stream.chunk() == CONNECTED
    return stream


async def body_of(stream) -> str:
    body = b""
    while not stream.ended:
        body += await stream.chunk()
    return body.decode()


@pytest.mark.django_db(transaction=True)
async def test_relay_stream_sends_data_only_frames_of_mentions_of_its_open_id(
    asgi_stream, async_client, fake_feishu
):
    stream = await open_relay(asgi_stream, "u-dev")

    await asend(async_client, room_id="oc_alpha", sender_id="u-manager", content="no mention")
    await asend(async_client, room_id="oc_alpha", sender_id="u-manager", content="for qa", mention_id="u-qa")
    sent = await asend(
        async_client, room_id="oc_alpha", sender_id="u-manager", content="for dev", mention_id="u-dev"
    )
    frame = await stream.frame()

    seq = await sync_to_async(lambda: Event.objects.get(message_id=sent["id"]).seq)()
    data = {"type": "message.created", "room_id": "oc_alpha", "message": sent}
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    assert frame.raw == f"id: {seq}\ndata: {body}\n\n".encode()
    assert frame.data["message"]["mentions"] == ["ou_dev"]
    assert frame.data["message"]["sender_id"] == "ou_manager"
    assert frame.data["message"]["content"] == "for dev"
    assert await sync_to_async(EventRecipient.objects.count)() == 2


@pytest.mark.django_db(transaction=True)
async def test_an_unconfigured_id_listens_as_its_own_open_id(asgi_stream, async_client, fake_feishu):
    stream = await open_relay(asgi_stream, "ou_dev")
    assert fake_feishu.info.call_count == 0

    sent = await asend(async_client, room_id="oc_beta", sender_id="u-qa", content="hi", mention_id="u-dev")

    assert (await stream.frame()).data["message"]["id"] == sent["id"]


@pytest.mark.django_db(transaction=True)
async def test_relay_cursor_memory_is_keyed_by_the_path_id(asgi_stream, async_client, fake_feishu):
    stream = await open_relay(asgi_stream, "u-dev", from_now=False)
    assert await stream.chunk() == PING
    await stream.disconnect()
    cursor = await sync_to_async(StreamCursor.objects.get)(kind=StreamCursorKind.FEISHU, key="u-dev")
    assert cursor.seq == await sync_to_async(event_newest_seq)()

    missed = await asend(
        async_client, room_id="oc_alpha", sender_id="u-manager", content="x", mention_id="u-dev"
    )
    again = await open_relay(asgi_stream, "u-dev", from_now=False)

    assert (await again.frame()).data["message"]["id"] == missed["id"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("apps", "text"),
    [
        ({"u-dev": ("", "dev-secret")}, 'resolve feishu bot open_id: feishu app_id is required for "u-dev"'),
        ({"u-dev": ("cli_dev", "")}, 'resolve feishu bot open_id: feishu app_secret is required for "u-dev"'),
        (APPS, "resolve feishu bot open_id: feishu bot info: code 99991663: app not found"),
    ],
)
async def test_open_id_resolution_failures_are_400(asgi_stream, fake_feishu, write_config, apps, text):
    write_config(apps)
    fake_feishu.info.side_effect = None
    fake_feishu.info.return_value = feishu_failure(99991663, "app not found")

    stream = await asgi_stream(relay_path("u-dev"), headers=AUTH)

    assert stream.status == 400
    assert await body_of(stream) == text + "\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    [
        relay_path("u-dev") + "/",
        relay_path(""),
        relay_path("%20"),
        relay_path("u-dev/extra"),
        "/api/v1/channels/feishu/bots/u-dev",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_bad_relay_paths_are_404_before_the_method(asgi_stream, fake_feishu, path, method):
    stream = await asgi_stream(path.replace("%20", " "), method=method)

    assert stream.status == 404
    assert await body_of(stream) == "404 page not found\n"


@pytest.mark.django_db(transaction=True)
async def test_relay_checks_method_then_auth_then_open_id(asgi_stream, fake_feishu, write_config):
    write_config({"u-dev": ("", "")})

    not_get = await asgi_stream(relay_path("u-dev"), method="POST")
    unauthorized = await asgi_stream(relay_path("u-dev"), headers={"Authorization": f"bearer {TOKEN}"})
    trimmed = await asgi_stream(relay_path(" u-dev "), headers=AUTH)

    assert (not_get.status, await body_of(not_get)) == (405, "method not allowed\n")
    assert (unauthorized.status, await body_of(unauthorized)) == (401, "unauthorized\n")
    # The path id is trimmed, so " u-dev " is the configured (and incomplete) app.
    assert (trimmed.status, await body_of(trimmed)) == (
        400,
        'resolve feishu bot open_id: feishu app_id is required for "u-dev"\n',
    )


@pytest.mark.django_db(transaction=True)
async def test_an_agents_own_token_opens_only_its_own_relay(asgi_stream, fake_feishu):
    agent = await sync_to_async(make_agent)("u-dev")
    own = {"Authorization": f"Bearer {agent.api_token}"}

    mine = await asgi_stream(relay_path("u-dev"), headers=own)
    other = await asgi_stream(relay_path("u-qa"), headers=own)

    assert mine.status == 200
    assert other.status == 401
