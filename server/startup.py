"""Start-up of the serving process (runserver, serve): migrations, the effective config and the background
bootstrap (spec config-and-commands §10, §10.1)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connections
from django.utils import timezone

from agents.credentials import PLACEHOLDER_WARNING
from agents.models import AgentStatus
from agents.records import manager_ensure
from core.config import (
    DEFAULT_ACCESS_TOKEN,
    Config,
    ConfigError,
    ModelsConfigError,
    api_base_url,
    csghub_lite_unreachable_message,
    default_config,
    discover_csghub_lite_models,
    effective_listen_addr,
    get_config,
    is_csghub_lite,
    render_effective_config,
    resolve_model,
    validate_models,
)
from core.config.hosts import allowed_hosts, remote_login_url
from im import services as im_services

logger = logging.getLogger("csgclaw.bootstrap")
server_logger = logging.getLogger("csgclaw.server")

# The host a listen address without one binds to: every IPv4 interface, as Go's ":18080" does.
ANY_HOST = "0.0.0.0"
CSGHUB_LITE_PROVIDER_SUBJECT = "csghub-lite provider"

StepResult = TypeVar("StepResult")


# --- the serving process ------------------------------------------------------------------------------


def serving_config() -> tuple[Config, ConfigError | None]:
    """The config the server runs with, and why it fell back to the defaults (missing or broken file)."""
    try:
        return get_config(), None
    except ConfigError as exc:
        return default_config(), exc


def serving_listen_addr(config: Config, addrport: str | None) -> str:
    """The effective listen address (§7); an addrport nothing could bind stops the command with a one-line
    error before it migrates or binds. The config's own listen_addr was checked when it loaded."""
    try:
        return effective_listen_addr(config, addrport)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def listen_addr_export(listen_addr: str) -> None:
    """Publish the effective bind address to this process and (through the environment) its children."""
    os.environ["CSGCLAW_LISTEN_ADDR"] = listen_addr
    settings.CSGCLAW_LISTEN_ADDR = listen_addr


def bind_address(listen_addr: str) -> tuple[str, int]:
    """(host, port) to bind for a normalised `host:port`; IPv6 hosts come back without brackets."""
    parsed = urlsplit(f"//{listen_addr}")
    return parsed.hostname or ANY_HOST, parsed.port or 0


def serving_prepare(
    *, config: Config, config_error: ConfigError | None, listen_addr: str, stdout: OutputWrapper
) -> None:
    """Steps 3.1–3.2 of §10: migrate, then print the effective config and the IM URL."""
    if config_error is not None:
        server_logger.warning("%s; serving with the default configuration", config_error)
    placeholder_token_warn(config)
    if settings.CSGCLAW_AUTO_MIGRATE:
        call_command("migrate", interactive=False, verbosity=0)
        # The server's worker threads open their own connections; this one would only sit idle.
        connections.close_all()
    stdout.write("effective config:")
    stdout.write(render_effective_config(config), ending="")
    stdout.write(f"CSGClaw IM is available at: {api_base_url(config, listen_addr)}/")
    serving_access_prepare(config=config, listen_addr=listen_addr, stdout=stdout)
    # Under a supervisor stdout is a pipe; the URL must show up now, not when the buffer fills.
    stdout.flush()


def placeholder_token_warn(config: Config) -> None:
    """security.md S1.2: the placeholder opens nothing, so say once why the server token does not work.

    Not with `no_auth`: then every bearer check passes and the warning would be untrue.
    """
    if config.server.access_token == DEFAULT_ACCESS_TOKEN and not config.server.no_auth:
        server_logger.warning(PLACEHOLDER_WARNING)


def serving_access_prepare(*, config: Config, listen_addr: str, stdout: OutputWrapper) -> None:
    """Accept the Host names of the address actually bound (security.md S3.1), and tell remote browsers
    where to log in (S4). Settings computed the names before an addrport could be known."""
    known = list(settings.ALLOWED_HOSTS)
    extra = settings.CSGCLAW_EXTRA_ALLOWED_HOSTS
    settings.ALLOWED_HOSTS = known + [
        h for h in allowed_hosts(config, listen_addr, extra=extra) if h not in known
    ]
    login_url = remote_login_url(listen_addr)
    if login_url and not config.server.no_auth:
        stdout.write(f"remote browsers log in at {login_url} with the access token")


def bootstrap_enabled(*, no_bootstrap: bool) -> bool:
    return not no_bootstrap and settings.CSGCLAW_BOOTSTRAP_ON_START


def bootstrap_start() -> threading.Thread:
    """Run the start-up bootstrap on a daemon thread, so a slow box never delays or blocks shutdown."""
    thread = threading.Thread(target=bootstrap_run, name="csgclaw-bootstrap", daemon=True)
    thread.start()
    return thread


# --- the start-up bootstrap (§10.1) ---------------------------------------------------------------------


def bootstrap_run() -> None:
    """Every step logs its own failure and the next one still runs; only a config error skips 4–7."""
    try:
        config = _step("load config", get_config)
        _step("ensure IM seed", im_services.seed_ensure)
        _step("prune events", bootstrap_prune_events)
        # Blobs of attachments whose rows are gone (or never committed) while the server was down.
        _step("collect attachment blobs", im_services.attachment_blobs_collect)
        _step("requeue provisioning", bootstrap_requeue_provisioning)
        if config is None:
            return
        _step("ensure manager", lambda: manager_ensure(config=config))
        _step("check csghub-lite", lambda: bootstrap_check_csghub_lite(config))
        _step("validate models", lambda: bootstrap_validate_models(config))
        _step("ensure manager box", lambda: bootstrap_manager_box(config))
    finally:
        connections.close_all()


def _step(name: str, action: Callable[[], StepResult]) -> StepResult | None:
    try:
        return action()
    except Exception as exc:
        logger.warning("%s: %s", name, exc)
        return None


def bootstrap_prune_events() -> None:
    im_services.events_prune(
        older_than=timezone.now() - timedelta(days=settings.CSGCLAW_EVENT_RETENTION_DAYS)
    )


def bootstrap_requeue_provisioning() -> None:
    # Imported here: the lifecycle pulls in the sandbox providers, which the serving process may never need.
    from agents.lifecycle import provisioning_requeue_stale

    provisioning_requeue_stale()


def bootstrap_check_csghub_lite(config: Config) -> None:
    """Warn early when the default model is served by a csghub-lite that is not running."""
    try:
        provider = config.models.providers[resolve_model(config).provider_name]
    except ConfigError:
        return  # an unresolvable default is reported by the validation step
    if not is_csghub_lite(provider):
        return
    try:
        discover_csghub_lite_models(provider.base_url, provider.api_key)
    except ConfigError as exc:
        logger.warning(
            csghub_lite_unreachable_message(provider.base_url, exc, subject=CSGHUB_LITE_PROVIDER_SUBJECT)
        )


def bootstrap_validate_models(config: Config) -> None:
    try:
        validate_models(config)
    except ModelsConfigError as exc:
        logger.warning("%s", exc)


def bootstrap_manager_box(config: Config) -> None:
    from agents.lifecycle import manager_box_ensure, manager_box_hint

    agent = manager_box_ensure(config=config)
    if agent.status != AgentStatus.RUNNING:
        # The hint goes on a line of its own, so stderr shows it exactly as onboard prints it.
        hint = manager_box_hint(config, agent)
        logger.warning(
            "manager box is not ready: %s%s", agent.status_detail or agent.status, f"\n{hint}" if hint else ""
        )
