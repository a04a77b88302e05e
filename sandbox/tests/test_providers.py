"""Tests for sandbox/providers/__init__.py: provider selection, the dotted-path override and error texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.providers import PROVIDER_CLASSES, get_provider
from sandbox.providers.base import SandboxError
from sandbox.providers.fake import FakeProvider
from sandbox.tests.factories import sandbox_config

pytestmark = pytest.mark.timeout(20)

UNSUPPORTED = (
    'unsupported sandbox provider "{}"; supported values are "boxlite-cli", "boxlite-sdk", "csghub", '
    '"docker" or "local"'
)


@pytest.mark.parametrize("name", ["boxlite-cli", "boxlite-sdk", "csghub", "docker", "local"])
def test_every_registered_name_builds_its_provider(name: str) -> None:
    config = sandbox_config(provider=name)

    provider = get_provider(config)

    assert provider.name == name
    assert type(provider).__module__ + "." + type(provider).__name__ == PROVIDER_CLASSES[name]


def test_the_registry_is_exactly_the_five_documented_names() -> None:
    assert sorted(PROVIDER_CLASSES) == ["boxlite-cli", "boxlite-sdk", "csghub", "docker", "local"]


@pytest.mark.parametrize("name", ["podman", "fake", "Docker"])
def test_unknown_provider_name_is_rejected_with_the_supported_list(name: str) -> None:
    with pytest.raises(SandboxError) as raised:
        get_provider(sandbox_config(provider=name))

    assert str(raised.value) == UNSUPPORTED.format(name)


def test_empty_provider_name_means_the_default() -> None:
    assert get_provider(sandbox_config(provider="")).name == "boxlite-sdk"


def test_dotted_path_overrides_the_configured_name() -> None:
    config = sandbox_config(provider="no-such-provider")

    provider = get_provider(config, "sandbox.providers.fake.FakeProvider")

    assert isinstance(provider, FakeProvider)
    assert provider.sandbox_config is config


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "sandbox.providers.nowhere.Provider",
            'invalid sandbox provider class "sandbox.providers.nowhere.Provider"',
        ),
        ("sandbox.providers.fake.Missing", 'module "sandbox.providers.fake" has no "Missing"'),
        ("FakeProvider", 'expected "package.module.Class"'),
    ],
)
def test_bad_dotted_path_names_the_path(path: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        get_provider(sandbox_config(), path)


@pytest.mark.subprocess
def test_importing_the_sandbox_package_never_imports_boxlite() -> None:
    code = (
        "import sys, sandbox.providers, sandbox.boxspec;"
        "from sandbox.providers import get_provider;"
        "from core.config import SandboxConfig;"
        "get_provider(SandboxConfig(provider='boxlite-sdk'));"
        "import sandbox.providers.local, sandbox.providers.csghub, sandbox.providers.docker;"
        "print('boxlite' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )

    assert result.stdout.strip() == "False"
