"""The data model of config.toml: defaults, errors and the dataclasses the other modules fill in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LISTEN_ADDR = "0.0.0.0:18080"
DEFAULT_PORT = "18080"
DEFAULT_ACCESS_TOKEN = "your_access_token"
DEFAULT_MANAGER_IMAGE = "opencsg-registry.cn-beijing.cr.aliyuncs.com/opencsghq/picoclaw:2026.4.24.0"
DEFAULT_SANDBOX_PROVIDER = "boxlite-sdk"
DEFAULT_HOME_DIR_NAME = "boxlite"
DEFAULT_BOXLITE_CLI_PATH = "boxlite"
DEFAULT_DEBIAN_REGISTRIES = ("harbor.opencsg.com", "docker.io")
DEFAULT_DOCKER_PATH = "docker"
DEFAULT_PICOCLAW_PATH = "picoclaw"
DEFAULT_LOCAL_ISOLATION = "auto"
DEFAULT_SANDBOX_RUNTIME = "auto"
DEFAULT_REQUEST_TIMEOUT = 300.0
DEFAULT_IDLE_TIMEOUT = 60.0
LLM_API_PROVIDER_TYPE = "llm-api"


class ConfigError(Exception):
    """A config.toml problem; str() is the exact user-facing message of the spec."""


class ConfigNotFound(ConfigError):
    """config.toml does not exist."""


class ModelResolutionError(ConfigError):
    """A model selector does not resolve against [models] (spec §6.2)."""


class ModelsConfigError(ConfigError):
    """The model configuration fails validation (spec §6.3); kind is "incomplete" or "invalid"."""

    def __init__(self, message: str, *, kind: str, missing_fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.missing_fields = missing_fields


@dataclass
class ServerConfig:
    listen_addr: str = DEFAULT_LISTEN_ADDR
    advertise_base_url: str = ""
    access_token: str = DEFAULT_ACCESS_TOKEN
    no_auth: bool = False
    # Ext. (security.md S3.1): Host names accepted besides the ones derived from the listen address.
    allowed_hosts: list[str] = field(default_factory=list)


@dataclass
class BootstrapConfig:
    manager_image: str = DEFAULT_MANAGER_IMAGE


@dataclass
class SandboxConfig:
    provider: str = DEFAULT_SANDBOX_PROVIDER
    home_dir_name: str = DEFAULT_HOME_DIR_NAME
    boxlite_cli_path: str = DEFAULT_BOXLITE_CLI_PATH
    debian_registries: list[str] = field(default_factory=lambda: list(DEFAULT_DEBIAN_REGISTRIES))
    docker_path: str = DEFAULT_DOCKER_PATH
    picoclaw_path: str = DEFAULT_PICOCLAW_PATH
    local_isolation: str = DEFAULT_LOCAL_ISOLATION
    runtime: str = DEFAULT_SANDBOX_RUNTIME


@dataclass
class ProviderConfig:
    name: str
    base_url: str = ""
    api_key: str = ""
    models: list[str] = field(default_factory=list)
    reasoning_effort: str = ""


@dataclass
class ModelsConfig:
    default: str = ""
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    providers: dict[str, ProviderConfig] = field(default_factory=dict)


@dataclass
class FeishuApp:
    app_id: str = ""
    app_secret: str = ""


@dataclass
class FeishuConfig:
    admin_open_id: str = ""
    apps: dict[str, FeishuApp] = field(default_factory=dict)


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    feishu: FeishuConfig = field(default_factory=FeishuConfig)
    path: Path | None = None
    # Resolved value of every key as loaded from `path`; save_config() rewrites only keys that differ,
    # so unchanged keys keep their raw text (placeholders such as "${ACCESS_TOKEN}").
    _baseline: dict[tuple[str, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)


@dataclass(frozen=True)
class ResolvedModel:
    """A model selector resolved against [models]: what an agent's LLM calls go to."""

    selector: str
    provider_name: str
    model_id: str
    base_url: str
    api_key: str
    reasoning_effort: str
    provider_type: str = LLM_API_PROVIDER_TYPE
