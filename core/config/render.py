"""The effective config for the start-up log, with secrets masked (spec §8), and the masking helpers."""

from __future__ import annotations

import re
from typing import Any

import tomlkit

from core.config.layout import _DEFAULT_PATH, _entries
from core.config.resolve import resolve_model
from core.config.save import _ensure_table, _toml_value
from core.config.schema import Config, ModelResolutionError

_SECRET_KEYS = frozenset({"access_token", "api_key", "app_secret"})
# `scheme://<userinfo>@`: the userinfo runs to the last `@` before the path, query or fragment, so a
# password holding a raw `@` is masked whole.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")


def mask_secret(value: str) -> str:
    """`sk-secret` → `sk*****et`: the first and last two characters of longer secrets, else all `*`."""
    value = value.strip()
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_url_credentials(text: str) -> str:
    """Every `scheme://user:pass@` in `text` as `scheme://***@` (security S9), the rest unchanged."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text) if "@" in text else text


def _masked_urls(value: Any) -> Any:
    if isinstance(value, str):
        return mask_url_credentials(value)
    if isinstance(value, list):
        return [_masked_urls(item) for item in value]
    return value


def render_effective_config(config: Config) -> str:
    """The config as TOML for the start-up log: expanded values, defaults filled in, secrets masked."""
    document = tomlkit.document()
    for entry in _entries(config):
        *parents, key = entry.path
        value = entry.value
        if entry.path == _DEFAULT_PATH and not value:
            value = _derived_default(config)
        if value == "" and entry.optional_default == "":
            continue
        if key in _SECRET_KEYS:
            value = mask_secret(value)
        value = _masked_urls(value)
        _ensure_table(document, parents)[key] = _toml_value(value)
    return document.as_string()


def _derived_default(config: Config) -> str:
    try:
        return resolve_model(config).selector
    except ModelResolutionError:
        return ""
