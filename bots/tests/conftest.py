"""Fixtures of the LLM bridge's tests; none is autouse: a module opts in with `usefixtures`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import respx

from agents.models import Agent
from bots.llm.usage import llm_usage_writes_settled
from bots.tests.llm_bridge import MODEL, SHARED_TOKEN, UPSTREAM_URL, make_agent, provider_toml
from core.config import clear_config_cache


@pytest.fixture
def write_config(settings, tmp_path) -> Iterator[Any]:
    """`write_config(*provider_tables, default=..., models_extra=...)` writes this test's config.toml."""
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = None
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = None
    settings.CSGCLAW_LLM_INCLUDE_STREAM_USAGE = False

    def write(*providers: str, default: str = f"remote.{MODEL}", models_extra: str = "") -> None:
        text = (
            f'[server]\naccess_token = "{SHARED_TOKEN}"\n\n'
            f'[models]\ndefault = "{default}"\n{models_extra}\n' + "\n".join(providers)
        )
        settings.CSGCLAW_CONFIG.write_text(text)
        # Rewrites within one mtime tick must still be seen.
        clear_config_cache()

    yield write
    clear_config_cache()


@pytest.fixture
def default_config(write_config) -> None:
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"], reasoning_effort="medium"))


@pytest.fixture
def agent() -> Agent:
    return make_agent()


@pytest.fixture
async def settle_usage_writes() -> AsyncIterator[None]:
    """Rows are written in the background after the response; none may outlive its test."""
    yield
    await llm_usage_writes_settled()


@pytest.fixture
def provider() -> Iterator[respx.Route]:
    """The mocked provider endpoint; every other host is unreachable."""
    with respx.mock(assert_all_called=False) as router:
        yield router.post(UPSTREAM_URL)
