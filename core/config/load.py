"""Loading config.toml (spec §5.1): read, reject legacy sections, expand, type-check and normalise."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from core.config.base_urls import _normalise_listen_addr
from core.config.env import expand_env
from core.config.layout import _DEFAULT_PATH, _entries
from core.config.normalise import _normalise, _unique
from core.config.schema import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    BootstrapConfig,
    Config,
    ConfigError,
    ConfigNotFound,
    FeishuApp,
    FeishuConfig,
    ModelsConfig,
    ProviderConfig,
    SandboxConfig,
    ServerConfig,
)

_LEGACY_SECTIONS = ("llm", "model")
_TRUE_TEXTS = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE_TEXTS = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def config_path() -> Path:
    """The config file: --config (exported by manage.py), else $CSGCLAW_CONFIG, else <home>/config.toml."""
    return Path(settings.CSGCLAW_CONFIG)


def default_config() -> Config:
    """The configuration a fresh home starts from (no model providers)."""
    return Config()


def load_config(path: Path | None = None) -> Config:
    """Read, expand, type-check and normalise config.toml; raises ConfigError with the spec's messages."""
    path = Path(path) if path is not None else config_path()
    data = _read_toml(path)
    _reject_legacy_sections(data)
    config = _config_from_toml(_Section("", data))
    config.path = path
    config._baseline = _loaded_values(config)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigNotFound(f"config not found at {path}; run `python manage.py onboard` first") from None
    except OSError as exc:
        raise ConfigError(f"read config: {exc}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"parse config {path}: {exc}") from exc


def _reject_legacy_sections(data: Mapping[str, Any]) -> None:
    for name in _LEGACY_SECTIONS:
        if isinstance(data.get(name), dict):
            raise ConfigError(
                f"legacy config section [{name}] is no longer supported; "
                "migrate to [models] and [models.providers.<name>]"
            )


def _loaded_values(config: Config) -> dict[tuple[str, ...], Any]:
    values = {entry.path: entry.value for entry in _entries(config)}
    # The default is compared as loaded, so a `provider:model` selector gets rewritten in canonical form.
    values[_DEFAULT_PATH] = config.models.default
    return values


def _config_from_toml(root: _Section) -> Config:
    server = root.table("server")
    bootstrap = root.table("bootstrap")
    sandbox = root.table("sandbox")
    models = root.table("models")
    config = Config(
        server=ServerConfig(
            listen_addr=server.listen_addr("listen_addr"),
            advertise_base_url=server.string("advertise_base_url"),
            access_token=server.string("access_token"),
            no_auth=server.boolean("no_auth"),
            allowed_hosts=server.strings("allowed_hosts"),
        ),
        bootstrap=BootstrapConfig(manager_image=bootstrap.string("manager_image")),
        sandbox=SandboxConfig(
            provider=sandbox.string("provider"),
            home_dir_name=sandbox.string("home_dir_name"),
            boxlite_cli_path=sandbox.string("boxlite_cli_path"),
            debian_registries=sandbox.strings("debian_registries"),
            docker_path=sandbox.string("docker_path"),
            picoclaw_path=sandbox.string("picoclaw_path"),
            local_isolation=sandbox.string("local_isolation"),
            runtime=sandbox.string("runtime"),
        ),
        models=ModelsConfig(
            default=models.string("default"),
            request_timeout=models.number("request_timeout", DEFAULT_REQUEST_TIMEOUT),
            idle_timeout=models.number("idle_timeout", DEFAULT_IDLE_TIMEOUT),
            providers=_providers_from_toml(models.table("providers")),
        ),
        feishu=_feishu_from_toml(root.table("channels").table("feishu")),
    )
    return _normalise(config)


def _providers_from_toml(section: _Section) -> dict[str, ProviderConfig]:
    providers: dict[str, ProviderConfig] = {}
    for name in section.data:
        if "." in name:
            raise ConfigError(f'models provider "{name}" must not contain "."')
        table = section.table(name)
        providers[name] = ProviderConfig(
            name=name,
            base_url=table.string("base_url"),
            api_key=table.string("api_key"),
            models=table.strings("models"),
            reasoning_effort=table.string("reasoning_effort"),
        )
    return providers


def _feishu_from_toml(section: _Section) -> FeishuConfig:
    apps: dict[str, FeishuApp] = {}
    for name, value in section.data.items():
        # Scalars next to admin_open_id are unknown keys (ignored); every table is one bot's Feishu app.
        if not isinstance(value, dict):
            continue
        if not name.strip():
            raise ConfigError("invalid feishu channel section")
        table = section.table(name)
        apps[name] = FeishuApp(app_id=table.string("app_id"), app_secret=table.string("app_secret"))
    return FeishuConfig(admin_open_id=section.string("admin_open_id"), apps=apps)


class _Section:
    """One TOML table with typed, env-expanded accessors whose errors name `<section>.<key>`."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self.name = name
        self.data = data

    def _qualified(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def _error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"parse {self._qualified(key)}: {problem}")

    def table(self, key: str) -> _Section:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self._error(key, "expected a table")
        return _Section(self._qualified(key), value)

    def string(self, key: str) -> str:
        value = self.data.get(key, "")
        if not isinstance(value, str):
            raise self._error(key, "expected a string")
        return expand_env(value).strip()

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._error(key, "expected an array of strings")
        return _unique(expand_env(item) for item in value)

    def boolean(self, key: str) -> bool:
        value = self.data.get(key, False)
        if isinstance(value, bool):
            return value
        if not isinstance(value, str):
            raise self._error(key, "expected a boolean")
        text = expand_env(value).strip()
        parsed = _parse_bool_text(text)
        if parsed is None:
            raise self._error(key, f'invalid boolean "{text}"')
        return parsed

    def listen_addr(self, key: str) -> str:
        text = self.string(key)
        try:
            return _normalise_listen_addr(text)
        except ConfigError as exc:
            raise self._error(key, str(exc)) from None

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._error(key, "expected a number")
        if isinstance(value, str):
            text = expand_env(value).strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise self._error(key, f'invalid number "{text}"') from None
        if not math.isfinite(value) or value <= 0:
            raise self._error(key, "must be a positive number of seconds")
        return float(value)


def _parse_bool_text(text: str) -> bool | None:
    """Go's strconv.ParseBool spellings, an empty string being false; None when the text is not one."""
    if not text or text in _FALSE_TEXTS:
        return False
    if text in _TRUE_TEXTS:
        return True
    return None
