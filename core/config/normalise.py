"""Normalisation of values (spec §3): trimming, de-duplication and defaults, the same on load and save."""

from __future__ import annotations

from collections.abc import Iterable

from core.config.base_urls import _normalise_listen_addr
from core.config.schema import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_BOXLITE_CLI_PATH,
    DEFAULT_DEBIAN_REGISTRIES,
    DEFAULT_DOCKER_PATH,
    DEFAULT_HOME_DIR_NAME,
    DEFAULT_LOCAL_ISOLATION,
    DEFAULT_MANAGER_IMAGE,
    DEFAULT_PICOCLAW_PATH,
    DEFAULT_SANDBOX_PROVIDER,
    DEFAULT_SANDBOX_RUNTIME,
    Config,
)


def _normalise(config: Config) -> Config:
    """Trim, de-duplicate and fill defaults in place (spec §3); the same rules apply to load and save."""
    server, sandbox, models = config.server, config.sandbox, config.models
    server.listen_addr = _normalise_listen_addr(server.listen_addr)
    server.advertise_base_url = server.advertise_base_url.strip().rstrip("/")
    server.access_token = server.access_token.strip() or DEFAULT_ACCESS_TOKEN
    server.allowed_hosts = _unique(server.allowed_hosts)
    config.bootstrap.manager_image = config.bootstrap.manager_image.strip() or DEFAULT_MANAGER_IMAGE
    sandbox.provider = sandbox.provider.strip() or DEFAULT_SANDBOX_PROVIDER
    sandbox.home_dir_name = sandbox.home_dir_name.strip() or DEFAULT_HOME_DIR_NAME
    sandbox.boxlite_cli_path = sandbox.boxlite_cli_path.strip() or DEFAULT_BOXLITE_CLI_PATH
    sandbox.debian_registries = _unique(sandbox.debian_registries) or list(DEFAULT_DEBIAN_REGISTRIES)
    sandbox.docker_path = sandbox.docker_path.strip() or DEFAULT_DOCKER_PATH
    sandbox.picoclaw_path = sandbox.picoclaw_path.strip() or DEFAULT_PICOCLAW_PATH
    sandbox.local_isolation = sandbox.local_isolation.strip() or DEFAULT_LOCAL_ISOLATION
    sandbox.runtime = sandbox.runtime.strip() or DEFAULT_SANDBOX_RUNTIME
    models.default = models.default.strip()
    for provider in models.providers.values():
        provider.base_url = provider.base_url.strip().rstrip("/")
        provider.api_key = provider.api_key.strip()
        provider.models = _unique(provider.models)
        provider.reasoning_effort = provider.reasoning_effort.strip().lower()
    config.feishu.admin_open_id = config.feishu.admin_open_id.strip()
    for app in config.feishu.apps.values():
        app.app_id = app.app_id.strip()
        app.app_secret = app.app_secret.strip()
    return config


def _unique(values: Iterable[str]) -> list[str]:
    """Trimmed, non-empty, first occurrence wins."""
    out: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in out:
            out.append(value)
    return out
