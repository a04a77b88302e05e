"""Factories for the sandbox tests: sandbox configs and a sample agent box spec."""

from __future__ import annotations

from pathlib import Path

from core.config import SandboxConfig
from sandbox.boxspec import box_environment, build_box_spec
from sandbox.providers.base import BoxSpec

IMAGE = "opencsg-registry.cn-beijing.cr.aliyuncs.com/opencsghq/picoclaw:2026.4.24.0"


def sandbox_config(**overrides: object) -> SandboxConfig:
    return SandboxConfig(**overrides)  # type: ignore[arg-type]


def agent_spec(home: Path, slug: str = "alice", agent_id: str = "u-alice", **environment: str) -> BoxSpec:
    """The box spec the agents app would build for one agent, with extra variables merged in."""
    env = box_environment(
        base_url="http://10.0.0.8:18080",
        access_token="shared-token",
        bot_id=agent_id,
        model_id="minimax-m2.7",
    )
    return build_box_spec(
        home=home, slug=slug, agent_id=agent_id, image=IMAGE, environment={**env, **environment}
    )
