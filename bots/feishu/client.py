"""The Feishu Open API client (http-api.md §8): tenant tokens, bot info and text messages, with caches.

Every call goes to `CSGCLAW_FEISHU_BASE_URL` with httpx. Apps come from `[channels.feishu.<bot id>]`
in config.toml. Caches are per process and keyed by the app's credentials, so editing config.toml
never serves a token or an open_id of the old app.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from core.config import FeishuApp, get_config_or_default

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
BOT_INFO_PATH = "/open-apis/bot/v3/info"
MESSAGES_PATH = "/open-apis/im/v1/messages"

TOKEN_CALL = "tenant token"
BOT_INFO_CALL = "bot info"
SEND_TEXT_CALL = "send text"

# A token is dropped this long before Feishu expires it, so no request carries one that dies in flight.
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
# A bot's open_id and name practically never change; ten minutes spares a Feishu round trip per stream
# connect and bot listing while still noticing a renamed app the same day.
BOT_INFO_TTL_SECONDS = 600.0
# Bounds a Feishu call made while a request waits (stream connect, send endpoint).
HTTP_TIMEOUT_SECONDS = 10.0


class FeishuError(Exception):
    """A Feishu app that cannot be used or a failed Feishu call; `str()` is the contract's error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FeishuBotInfo:
    open_id: str
    app_name: str


@dataclass(frozen=True)
class _Credentials:
    base_url: str
    app_id: str
    app_secret: str


class _ExpiringCache:
    """Values with a deadline; one lock per key, so concurrent callers for one app fetch only once."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._values: dict[Hashable, tuple[Any, float]] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_or_fetch(self, key: Hashable, fetch: Callable[[], tuple[Any, float]]) -> Any:
        """The cached value of `key`, or `fetch()` → (value, seconds it stays valid), stored."""
        with self._guard:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            cached = self._values.get(key)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
            value, valid_for = fetch()
            self._values[key] = (value, self._clock() + valid_for)
            return value


class FeishuClient:
    """The three Open API calls the server makes, with the token and bot-info caches of one process."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens = _ExpiringCache(clock)
        self._bot_infos = _ExpiringCache(clock)

    def tenant_token(self, credentials: _Credentials) -> str:
        def fetch() -> tuple[str, float]:
            body = _call(
                TOKEN_CALL,
                "POST",
                credentials.base_url + TOKEN_PATH,
                json={"app_id": credentials.app_id, "app_secret": credentials.app_secret},
            )
            token = body.get("tenant_access_token")
            if not isinstance(token, str) or not token:
                raise FeishuError(f"feishu {TOKEN_CALL}: response has no tenant_access_token")
            expire = body.get("expire")
            lifetime = float(expire) if isinstance(expire, (int, float)) else 0.0
            return token, lifetime - TOKEN_REFRESH_MARGIN_SECONDS

        return self._tokens.get_or_fetch(credentials, fetch)

    def bot_info(self, credentials: _Credentials) -> FeishuBotInfo:
        def fetch() -> tuple[FeishuBotInfo, float]:
            body = _call(
                BOT_INFO_CALL,
                "GET",
                credentials.base_url + BOT_INFO_PATH,
                headers=_bearer(self.tenant_token(credentials)),
            )
            bot = body.get("bot") if isinstance(body.get("bot"), dict) else {}
            info = FeishuBotInfo(open_id=_text(bot.get("open_id")), app_name=_text(bot.get("app_name")))
            if not info.open_id:
                raise FeishuError(f"feishu {BOT_INFO_CALL}: response has no bot open_id")
            return info, BOT_INFO_TTL_SECONDS

        return self._bot_infos.get_or_fetch(credentials, fetch)

    def send_text(self, credentials: _Credentials, *, chat_id: str, text: str, uuid: str) -> str:
        """Post a text message into a Feishu chat; returns Feishu's message id ("" if it sent none).

        `uuid` makes Feishu drop a repeated send of the same message.
        """
        body = _call(
            SEND_TEXT_CALL,
            "POST",
            credentials.base_url + MESSAGES_PATH,
            params={"receive_id_type": "chat_id"},
            headers=_bearer(self.tenant_token(credentials)),
            json={
                "receive_id": chat_id,
                "msg_type": "text",
                "content": json.dumps({"text": text}, ensure_ascii=False),
                "uuid": uuid,
            },
        )
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        return _text(data.get("message_id"))


client = FeishuClient()


def feishu_app(bot_id: str) -> FeishuApp | None:
    """The `[channels.feishu.<bot_id>]` table of the current config.toml, if there is one."""
    config, _ = get_config_or_default()
    return config.feishu.apps.get(bot_id)


def feishu_app_configured(bot_id: str) -> bool:
    return feishu_app(bot_id) is not None


def feishu_bot_info(bot_id: str) -> FeishuBotInfo:
    """The open_id and app name of the Feishu app configured for `bot_id`.

    Raises FeishuError when no app is configured, when it lacks app_id or app_secret, or when Feishu fails.
    """
    return client.bot_info(_credentials(bot_id))


def feishu_open_id(bot_id: str) -> str:
    """The bot's Feishu open_id when an app is configured for it, else the id itself (events.md §4)."""
    if not feishu_app_configured(bot_id):
        return bot_id
    return feishu_bot_info(bot_id).open_id


def feishu_send_text(*, bot_id: str, chat_id: str, text: str, uuid: str) -> str:
    """Send `text` to a Feishu chat as the app of `bot_id`; returns Feishu's message id ("" if none)."""
    return client.send_text(_credentials(bot_id), chat_id=chat_id, text=text, uuid=uuid)


def _credentials(bot_id: str) -> _Credentials:
    app = feishu_app(bot_id)
    if app is None:
        raise FeishuError(f'feishu app is not configured for "{bot_id}"')
    if not app.app_id:
        raise FeishuError(f'feishu app_id is required for "{bot_id}"')
    if not app.app_secret:
        raise FeishuError(f'feishu app_secret is required for "{bot_id}"')
    base_url = settings.CSGCLAW_FEISHU_BASE_URL.rstrip("/")
    return _Credentials(base_url=base_url, app_id=app.app_id, app_secret=app.app_secret)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _call(call: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """One Open API request; a transport failure, a non-JSON answer or `code != 0` is a FeishuError."""
    try:
        response = httpx.request(method, url, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)
    except httpx.HTTPError as exc:
        raise FeishuError(f"feishu {call}: {exc or type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FeishuError(f"feishu {call}: unexpected HTTP {response.status_code} response")
    code = body.get("code", 0)
    if code != 0:
        raise FeishuError(f"feishu {call}: code {code}: {_text(body.get('msg'))}")
    if response.is_error:
        raise FeishuError(f"feishu {call}: unexpected HTTP {response.status_code} response")
    return body
