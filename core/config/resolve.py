"""Model selectors, their resolution against [models] and the validation of [models] (spec §6)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from core.config.normalise import _unique
from core.config.schema import (
    LLM_API_PROVIDER_TYPE,
    Config,
    ModelResolutionError,
    ModelsConfigError,
    ResolvedModel,
)

_MODEL_FIELD_FLAGS = (
    ("base_url", "--base-url"),
    ("api_key", "--api-key"),
    ("model_id", "--models"),
    ("default", "--models"),
)


def split_selector(selector: str) -> tuple[str, str]:
    """`provider.model` or `provider:model`, split at whichever separator comes first.

    Without a separator, or when either half is empty, the whole trimmed selector is the provider name
    and the model is "" (so `remote.` is looked up as a provider named `remote.` and not found).
    """
    selector = selector.strip()
    positions = [position for position in (selector.find("."), selector.find(":")) if position != -1]
    if not positions:
        return selector, ""
    cut = min(positions)
    provider, model = selector[:cut].strip(), selector[cut + 1 :].strip()
    if not provider or not model:
        return selector, ""
    return provider, model


def canonical_selector(selector: str) -> str:
    """The `provider.model` spelling of a selector (`remote:gpt-5.4` → `remote.gpt-5.4`)."""
    provider, model = split_selector(selector)
    return f"{provider}.{model}" if model else provider


def resolve_model(config: Config, requested: str = "") -> ResolvedModel:
    """Resolve `requested`, else [models].default, else the only provider (spec §6.2)."""
    providers = config.models.providers
    selector = requested.strip() or config.models.default.strip()
    if not selector and len(providers) == 1:
        selector = next(iter(providers))
    if not selector:
        raise ModelResolutionError("models default is not configured")
    name, model_id = split_selector(selector)
    provider = providers.get(name)
    if provider is None:
        raise ModelResolutionError(f'models provider "{name}" was not found')
    models = _unique(provider.models)
    if not model_id and len(models) > 1:
        raise ModelResolutionError(
            f'models provider "{name}" has multiple models; set models.default to "{name}.{models[0]}"'
        )
    if not model_id:
        model_id = models[0] if models else ""
    elif model_id not in models:
        raise ModelResolutionError(f'models default "{selector}" does not match any models.providers entry')
    return ResolvedModel(
        selector=f"{name}.{model_id}" if model_id else name,
        provider_name=name,
        model_id=model_id,
        base_url=provider.base_url.strip().rstrip("/"),
        api_key=provider.api_key.strip(),
        reasoning_effort=provider.reasoning_effort.strip().lower(),
    )


def missing_model_flags(fields: Iterable[str]) -> list[str]:
    """Onboard flags for missing model fields: base_url, api_key, model_id/default, in that order."""
    missing = set(fields)
    flags: list[str] = []
    for field_name, flag in _MODEL_FIELD_FLAGS:
        if field_name in missing and flag not in flags:
            flags.append(flag)
    return flags


def validate_models(config: Config) -> None:
    """Check the model configuration as onboard, serve and bootstrap do (spec §6.3)."""
    providers = config.models.providers
    if not providers:
        raise _incomplete(("base_url", "api_key", "model_id"))
    try:
        resolved = resolve_model(config)
    except ModelResolutionError as exc:
        raise ModelsConfigError(f"models config is invalid: {exc}", kind="invalid") from exc
    missing = _missing_fields(resolved.base_url, resolved.api_key, [resolved.model_id])
    if missing:
        raise _incomplete(missing)
    for name in sorted(providers):
        provider = providers[name]
        missing = _missing_fields(provider.base_url, provider.api_key, provider.models)
        if missing:
            raise ModelsConfigError(
                f'models config is invalid: models provider "{name}" is invalid: '
                f'provider "{LLM_API_PROVIDER_TYPE}" is missing required fields: {", ".join(missing)}',
                kind="invalid",
                missing_fields=missing,
            )


def _missing_fields(base_url: str, api_key: str, models: Iterable[str]) -> tuple[str, ...]:
    present = {"base_url": base_url.strip(), "api_key": api_key.strip(), "model_id": _unique(models)}
    return tuple(name for name, value in present.items() if not value)


def _incomplete(missing: tuple[str, ...]) -> ModelsConfigError:
    return ModelsConfigError(
        f"models config is incomplete ({', '.join(missing_model_flags(missing))}); "
        "run `python manage.py onboard --provider csghub-lite --models <model>` or "
        "`python manage.py onboard --base-url <url> --api-key <key> --models <model[,model...]> "
        "[--reasoning-effort <effort>]`",
        kind="incomplete",
        missing_fields=missing,
    )


def llm_timeouts(config: Config) -> tuple[float, float]:
    """The LLM proxy's (request, idle) timeouts: CSGCLAW_LLM_*_TIMEOUT settings override [models]."""
    request = getattr(settings, "CSGCLAW_LLM_REQUEST_TIMEOUT", None) or config.models.request_timeout
    idle = getattr(settings, "CSGCLAW_LLM_IDLE_TIMEOUT", None) or config.models.idle_timeout
    return float(request), float(idle)
