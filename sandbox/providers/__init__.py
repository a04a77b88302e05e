"""Sandbox provider registry: maps a provider name (or a dotted class path) to a provider instance."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sandbox.providers.base import SandboxError

if TYPE_CHECKING:
    from core.config import SandboxConfig
    from sandbox.providers.base import SandboxProvider

# Dotted paths rather than classes so that importing the registry never imports a provider module
# (boxlite-sdk needs an optional package; nothing is checked before a provider is first used).
PROVIDER_CLASSES: dict[str, str] = {
    "boxlite-cli": "sandbox.providers.boxlite_cli.BoxliteCliProvider",
    "boxlite-sdk": "sandbox.providers.boxlite_sdk.BoxliteSdkProvider",
    "csghub": "sandbox.providers.csghub.CsghubProvider",
    "docker": "sandbox.providers.docker.DockerProvider",
    "local": "sandbox.providers.local.LocalProvider",
}

DEFAULT_PROVIDER = "boxlite-sdk"


def provider_class(name: str) -> type[SandboxProvider]:
    """The provider class registered under `name`; an unknown name raises the spec's SandboxError."""
    class_path = PROVIDER_CLASSES.get(name)
    if class_path is None:
        raise SandboxError(
            f'unsupported sandbox provider "{name}"; supported values are '
            '"boxlite-cli", "boxlite-sdk", "csghub", "docker" or "local"'
        )
    return import_class(class_path)


def import_class(class_path: str) -> type[SandboxProvider]:
    """Import `package.module.ClassName`; any failure becomes a SandboxError naming the path."""
    module_path, _, class_name = class_path.rpartition(".")
    if not module_path:
        raise SandboxError(f'invalid sandbox provider class "{class_path}": expected "package.module.Class"')
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise SandboxError(f'invalid sandbox provider class "{class_path}": {error}') from error
    try:
        return getattr(module, class_name)
    except AttributeError as error:
        raise SandboxError(
            f'invalid sandbox provider class "{class_path}": module "{module_path}" has no "{class_name}"'
        ) from error


def get_provider(sandbox_config: SandboxConfig, provider_class_path: str = "") -> SandboxProvider:
    """The provider for `[sandbox]`: the dotted-path override when given, else `[sandbox].provider`."""
    if provider_class_path.strip():
        cls = import_class(provider_class_path.strip())
    else:
        cls = provider_class(sandbox_config.provider.strip() or DEFAULT_PROVIDER)
    return cls(sandbox_config)
