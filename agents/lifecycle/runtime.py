"""How the lifecycle reaches an agent's box: the current config, the provider's runtime, the box itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from agents.models import Agent
from agents.records import agent_status_record
from core.config import Config, ConfigError, get_config_or_default
from core.errors import Unavailable
from sandbox import boxspec
from sandbox.agent_home import UnsafePath
from sandbox.providers import get_provider
from sandbox.providers.base import Box, BoxInfo, BoxNotFound, SandboxError, SandboxRuntime


def current_config() -> Config:
    config, error = get_config_or_default()
    if error is not None:
        raise error
    return config


def current_config_for_request() -> Config:
    """The config for an API request; a config.toml that cannot be loaded is a 503, not a crash."""
    try:
        return current_config()
    except ConfigError as exc:
        raise Unavailable(f"config is unavailable: {exc}") from exc


def uses_local_provider(config: Config) -> bool:
    return not settings.CSGCLAW_SANDBOX_PROVIDER_CLASS and config.sandbox.provider.strip() == "local"


@contextmanager
def open_runtime(config: Config, agent: Agent) -> Iterator[SandboxRuntime]:
    provider = get_provider(config.sandbox, settings.CSGCLAW_SANDBOX_PROVIDER_CLASS)
    home = boxspec.runtime_home(settings.CSGCLAW_HOME, agent.slug, config.sandbox.home_dir_name)
    runtime = provider.open(home)
    try:
        yield runtime
    finally:
        runtime.close()


def box_keys(agent: Agent) -> list[str]:
    """How an agent's box is addressed: its stored id, then its name (sandbox.md §8.1)."""
    return list(dict.fromkeys(key for key in (agent.box_id, agent.slug) if key))


def find_box(runtime: SandboxRuntime, agent: Agent) -> Box | None:
    for key in box_keys(agent):
        try:
            return runtime.get(key)
        except BoxNotFound:
            continue
        except SandboxError as exc:
            raise SandboxError(f"get agent box: {exc}") from exc
    return None


def box_info(box: Box) -> BoxInfo:
    try:
        return box.info()
    finally:
        box.close()


def box_record(agent_id: str, info: BoxInfo) -> Agent | None:
    """Save what the box reports (state, detail, id); None when the agent was deleted meanwhile."""
    return agent_status_record(
        agent_id=agent_id, status=info.state, status_detail=info.detail, box_id=info.id
    )


def failure_detail(prefix: str, exc: BaseException) -> str:
    """`<prefix>: <error>`; a link the box planted in its home is named alone (security S5.2)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, UnsafePath):
            return str(cause)
        cause = cause.__cause__
    return f"{prefix}: {exc}"
