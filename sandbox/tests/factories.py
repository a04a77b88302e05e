"""Factories for the sandbox tests: sandbox configs, sample agent box specs and the §6.2 example rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.config import SandboxConfig
from sandbox.boxspec import box_environment, build_box_spec
from sandbox.providers.base import BoxSpec

IMAGE = "opencsg-registry.cn-beijing.cr.aliyuncs.com/opencsghq/picoclaw:2026.4.24.0"
EXAMPLE_BASE = "http://10.0.0.8:18080"
EXAMPLE_TOKEN = "shared-token"
EXAMPLE_MODEL = "minimax-m2.7"
EXAMPLE_LLM = f"{EXAMPLE_BASE}/api/v1/agents/u-worker-1/llm"
# What the server's own environment may hold for its model provider; no box may ever receive it.
PROVIDER_KEY = "sk-provider-7e41"
PROVIDER_BASE_URL = "https://models.provider.example/v1"

# participants.md §6.2, row by row (variables, value), with the values of its example worker.
SECTION_6_2_ROWS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("HOME",), "/home/picoclaw"),
    (("CSGCLAW_BASE_URL",), EXAMPLE_BASE),
    (("CSGCLAW_ACCESS_TOKEN",), EXAMPLE_TOKEN),
    (("CSGCLAW_LLM_BASE_URL", "OPENAI_BASE_URL", "PICOCLAW_CUSTOM_MODEL_BASE_URL"), EXAMPLE_LLM),
    (("CSGCLAW_LLM_API_KEY", "OPENAI_API_KEY", "PICOCLAW_CUSTOM_MODEL_API_KEY"), EXAMPLE_TOKEN),
    (
        (
            "CSGCLAW_LLM_MODEL_ID",
            "OPENAI_MODEL",
            "PICOCLAW_AGENTS_DEFAULTS_MODEL_NAME",
            "PICOCLAW_CUSTOM_MODEL_NAME",
        ),
        EXAMPLE_MODEL,
    ),
    (("PICOCLAW_CUSTOM_MODEL_ID",), "openai/minimax-m2.7"),
    (("PICOCLAW_CHANNELS_CSGCLAW_ENABLED",), "true"),
    (("PICOCLAW_CHANNELS_CSGCLAW_BASE_URL",), EXAMPLE_BASE),
    (("PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN",), EXAMPLE_TOKEN),
    (("PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID",), "pt-worker-1"),
    (("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID",), "u-worker-1"),
)
EXAMPLE_ENVIRONMENT = {key: value for keys, value in SECTION_6_2_ROWS for key in keys}


def sandbox_config(**overrides: object) -> SandboxConfig:
    return SandboxConfig(**overrides)  # type: ignore[arg-type]


def agent_spec(home: Path, slug: str = "alice", agent_id: str = "u-alice", **environment: str) -> BoxSpec:
    """The box spec the agents app would build for one agent, with extra variables merged in."""
    env = box_environment(
        base_url=EXAMPLE_BASE,
        access_token=EXAMPLE_TOKEN,
        bot_id=agent_id,
        model_id=EXAMPLE_MODEL,
    )
    return build_box_spec(
        home=home,
        slug=slug,
        agent_id=agent_id,
        image=IMAGE,
        environment={**env, **environment},
    )


def example_spec(home: Path) -> BoxSpec:
    """The box spec of the §6.2 example worker `u-worker-1`."""
    return agent_spec(home, slug="worker-1", agent_id="u-worker-1")


def example_environment_mismatches(
    env: Mapping[str, str | None], *, home: str = "/home/picoclaw"
) -> dict[str, tuple[str | None, str]]:
    """Each §6.2 row the environment a runtime received gets wrong: variable → (received, expected).

    `home` is the box home as that runtime sees it (the unisolated local provider runs in a host dir).
    """
    expected = {**EXAMPLE_ENVIRONMENT, "HOME": home}
    return {key: (env.get(key), value) for key, value in expected.items() if env.get(key) != value}


def provider_secrets_in(env: Mapping[str, str | None]) -> list[str]:
    """The variables that carry the model provider's key or base URL into a box."""
    return [
        key for key, value in env.items() if value and (PROVIDER_KEY in value or PROVIDER_BASE_URL in value)
    ]
