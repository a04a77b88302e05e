"""The model and server settings onboard writes to config.toml (spec config-and-commands §9.1–§9.2).

Everything here edits a loaded `Config` in memory; the command saves it once all of it validated, so a
bad flag or an unreachable csghub-lite leaves the file untouched.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import (
    CSGHUB_LITE_PROVIDER,
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_CSGHUB_LITE_API_KEY,
    DEFAULT_CSGHUB_LITE_BASE_URL,
    Config,
    ConfigError,
    ProviderConfig,
    csghub_lite_unreachable_message,
    discover_csghub_lite_models,
    split_selector,
)

CUSTOM_PROVIDER = "custom"
# The provider a custom configuration goes to when there is no current default to take it from.
NEW_PROVIDER_NAME = "default"
SANDBOX_PROVIDERS = ("boxlite-cli", "boxlite-sdk", "csghub", "docker", "local")


class OnboardError(Exception):
    """Aborts onboard; str() is printed to stderr as is and the exit status is 1."""


@dataclass(frozen=True)
class ModelFlags:
    """The model flags of §9.1, validated; None means "not given"."""

    provider: str | None
    base_url: str | None
    api_key: str | None
    models: list[str] | None
    reasoning_effort: str | None

    @property
    def given(self) -> bool:
        return any(
            value is not None
            for value in (self.provider, self.base_url, self.api_key, self.models, self.reasoning_effort)
        )


def parse_list(text: str) -> list[str]:
    """`a, b,,a` → `["a", "b"]`: trimmed, empties dropped, first occurrence wins."""
    items: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item and item not in items:
            items.append(item)
    return items


def model_flags_from(options: dict[str, Any]) -> ModelFlags:
    """The model flags, with --provider and --models checked (step 2)."""
    provider = options["provider"]
    if provider is not None:
        provider = provider.strip().lower()
        if provider not in (CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER):
            raise OnboardError(
                f'unsupported --provider "{options["provider"]}"; '
                'supported values are "csghub-lite" and "custom"'
            )
    models = None
    if options["models"] is not None:
        models = parse_list(options["models"])
        if not models:
            raise OnboardError("--models must include at least one model identifier")
    return ModelFlags(
        provider=provider,
        base_url=_stripped(options["base_url"]),
        api_key=_stripped(options["api_key"]),
        models=models,
        reasoning_effort=_stripped(options["reasoning_effort"]),
    )


def sandbox_provider_from(options: dict[str, Any]) -> str | None:
    value = options["sandbox_provider"]
    if value is None:
        return None
    if value.strip().lower() not in SANDBOX_PROVIDERS:
        raise OnboardError(unsupported_sandbox_provider(value))
    return value.strip().lower()


def unsupported_sandbox_provider(value: str) -> str:
    return (
        f'unsupported sandbox provider "{value}"; supported values are '
        '"boxlite-cli", "boxlite-sdk", "csghub", "docker" or "local"'
    )


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def current_provider_name(config: Config) -> str:
    """The provider of the current default selector, else the only provider, else ""."""
    providers = config.models.providers
    if config.models.default:
        return split_selector(config.models.default)[0]
    if len(providers) == 1:
        return next(iter(providers))
    return ""


def custom_provider_name(config: Config, *, chosen: bool) -> str:
    """The provider custom settings go to: the current default's, or `default` when there is none.

    When the person chose "custom" over a current csghub-lite, the csghub-lite entry keeps its name and
    settings and the custom ones get their own provider.
    """
    name = current_provider_name(config)
    if not name or (chosen and name == CSGHUB_LITE_PROVIDER):
        return NEW_PROVIDER_NAME
    return name


def apply_custom_provider(
    config: Config,
    *,
    base_url: str | None,
    api_key: str | None,
    models: list[str] | None,
    reasoning_effort: str | None,
    chosen: bool = False,
) -> None:
    """Overwrite only the given fields of the target provider (custom_provider_name)."""
    name = custom_provider_name(config, chosen=chosen)
    provider = config.models.providers.setdefault(name, ProviderConfig(name=name))
    if base_url is not None:
        provider.base_url = base_url
    if api_key is not None:
        provider.api_key = api_key
    if models is not None:
        provider.models = models
    if reasoning_effort is not None:
        provider.reasoning_effort = reasoning_effort
    if provider.models and (models is not None or not config.models.default):
        config.models.default = f"{name}.{provider.models[0]}"


def discover_models(base_url: str, api_key: str) -> list[str]:
    try:
        return discover_csghub_lite_models(base_url, api_key)
    except ConfigError as exc:
        raise OnboardError(csghub_lite_unreachable_message(base_url.strip().rstrip("/"), exc)) from exc


def apply_csghub_lite(
    config: Config,
    *,
    base_url: str,
    api_key: str,
    models: list[str],
    reasoning_effort: str | None,
    keep_default: bool,
) -> None:
    """Point the `csghub-lite` provider at `base_url`; it replaces a `default` provider left all empty."""
    providers = config.models.providers
    provider = providers.setdefault(CSGHUB_LITE_PROVIDER, ProviderConfig(name=CSGHUB_LITE_PROVIDER))
    provider.base_url, provider.api_key, provider.models = base_url, api_key, models
    if reasoning_effort is not None:
        provider.reasoning_effort = reasoning_effort
    placeholder = providers.get(NEW_PROVIDER_NAME)
    if placeholder is not None and not (placeholder.base_url or placeholder.api_key or placeholder.models):
        del providers[NEW_PROVIDER_NAME]
    current_name, current_model = split_selector(config.models.default)
    if not (keep_default and current_name == CSGHUB_LITE_PROVIDER and current_model in models):
        config.models.default = f"{CSGHUB_LITE_PROVIDER}.{models[0]}"


def apply_model_flags(config: Config, flags: ModelFlags) -> None:
    """Step 3, non-interactive: the model flags decide."""
    if flags.provider == CSGHUB_LITE_PROVIDER:
        base_url = flags.base_url or DEFAULT_CSGHUB_LITE_BASE_URL
        api_key = flags.api_key or DEFAULT_CSGHUB_LITE_API_KEY
        apply_csghub_lite(
            config,
            base_url=base_url,
            api_key=api_key,
            models=flags.models or discover_models(base_url, api_key),
            reasoning_effort=flags.reasoning_effort,
            keep_default=True,
        )
    else:
        apply_custom_provider(
            config,
            base_url=flags.base_url,
            api_key=flags.api_key,
            models=flags.models,
            reasoning_effort=flags.reasoning_effort,
            chosen=flags.provider == CUSTOM_PROVIDER,
        )


def apply_server_flags(config: Config, options: dict[str, Any], sandbox_provider: str | None) -> None:
    """Step 4: the flags outside [models]."""
    if (options["manager_image"] or "").strip():
        config.bootstrap.manager_image = options["manager_image"].strip()
    registries = parse_list(options["debian_registries"] or "")
    if registries:
        config.sandbox.debian_registries = registries
    if sandbox_provider is not None:
        config.sandbox.provider = sandbox_provider
    if options["listen_addr"] is not None:
        config.server.listen_addr = options["listen_addr"]
    if options["advertise_base_url"] is not None:
        config.server.advertise_base_url = options["advertise_base_url"]
    if options["access_token"] is not None:
        config.server.access_token = options["access_token"]
    if options["no_auth"] is not None:
        config.server.no_auth = options["no_auth"]


def access_token_generate(config: Config, options: dict[str, Any]) -> str | None:
    """security.md S1.1: a fresh random server token unless one was given or a real one is configured.

    Judged on the value as written in the file, not as expanded: `${MY_TOKEN}` is the user's choice even
    while the variable is unset. Returns the new token, None when the config keeps its own.
    """
    if options["access_token"] is not None:
        return None
    written = _written_access_token(config.path)
    if written not in ("", DEFAULT_ACCESS_TOKEN):
        return None
    token = secrets.token_urlsafe(32)
    config.server.access_token = token
    return token


def access_token_notice(token: str, path: Path) -> str:
    """The one line onboard prints about a generated token: enough to recognise it, not to use it."""
    return f"access token: {token[:4]}…{token[-4:]} (full value in {path})"


def _written_access_token(path: Path | None) -> str | None:
    """`[server].access_token` exactly as config.toml spells it (trimmed), "" when absent or no file yet;
    None when the file cannot be read again (then the loaded value stands)."""
    if path is None:
        return ""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    server = data.get("server", {})
    value = server.get("access_token", "") if isinstance(server, dict) else ""
    return value.strip() if isinstance(value, str) else None
