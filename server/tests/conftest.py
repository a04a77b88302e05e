"""Fixtures for the server tests: the agents tests' private state directory, config.toml and fake sandbox."""

from agents.tests.conftest import (  # noqa: F401 (fixtures, registered by being importable here)
    agent_config,
    csgclaw_home,
    fail_sandbox,
    fake_boxes,
    until,
    write_config,
)
