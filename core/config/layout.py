"""The canonical layout of config.toml (spec §3): every key in file order, as load, save and render see it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, NamedTuple

from core.config.normalise import _normalise
from core.config.resolve import canonical_selector
from core.config.schema import (
    DEFAULT_DOCKER_PATH,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LOCAL_ISOLATION,
    DEFAULT_PICOCLAW_PATH,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SANDBOX_RUNTIME,
    Config,
)

_REQUIRED = object()
# (section, key, default when the key is optional, i.e. only written when it differs).
_PLAIN_KEYS: tuple[tuple[str, str, Any], ...] = (
    ("server", "listen_addr", _REQUIRED),
    ("server", "advertise_base_url", _REQUIRED),
    ("server", "access_token", _REQUIRED),
    ("server", "no_auth", _REQUIRED),
    ("server", "allowed_hosts", []),
    ("bootstrap", "manager_image", _REQUIRED),
    ("sandbox", "provider", _REQUIRED),
    ("sandbox", "home_dir_name", _REQUIRED),
    ("sandbox", "boxlite_cli_path", _REQUIRED),
    ("sandbox", "debian_registries", _REQUIRED),
    ("sandbox", "docker_path", DEFAULT_DOCKER_PATH),
    ("sandbox", "picoclaw_path", DEFAULT_PICOCLAW_PATH),
    ("sandbox", "local_isolation", DEFAULT_LOCAL_ISOLATION),
    ("sandbox", "runtime", DEFAULT_SANDBOX_RUNTIME),
)

_DEFAULT_PATH = ("models", "default")


class _Entry(NamedTuple):
    """One key of the canonical layout with its resolved value."""

    path: tuple[str, ...]
    value: Any
    optional_default: Any = _REQUIRED


def _entries(config: Config) -> Iterator[_Entry]:
    """Every key of the canonical layout (spec §3) in file order, with normalised values."""
    config = _normalise(copy.deepcopy(config))
    for section, key, optional_default in _PLAIN_KEYS:
        yield _Entry((section, key), getattr(getattr(config, section), key), optional_default)
    models = config.models
    yield _Entry(_DEFAULT_PATH, canonical_selector(models.default))
    yield _Entry(("models", "request_timeout"), models.request_timeout, DEFAULT_REQUEST_TIMEOUT)
    yield _Entry(("models", "idle_timeout"), models.idle_timeout, DEFAULT_IDLE_TIMEOUT)
    for name in sorted(models.providers):
        provider = models.providers[name]
        table = ("models", "providers", name)
        yield _Entry((*table, "base_url"), provider.base_url)
        yield _Entry((*table, "api_key"), provider.api_key)
        yield _Entry((*table, "models"), provider.models)
        yield _Entry((*table, "reasoning_effort"), provider.reasoning_effort, "")
    yield _Entry(("channels", "feishu", "admin_open_id"), config.feishu.admin_open_id, "")
    for name in sorted(config.feishu.apps):
        app = config.feishu.apps[name]
        yield _Entry(("channels", "feishu", name, "app_id"), app.app_id)
        yield _Entry(("channels", "feishu", name, "app_secret"), app.app_secret)
