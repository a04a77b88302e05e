"""Tests for core.config.resolve: model selectors, resolution, validation and LLM timeouts (§6)."""

from __future__ import annotations

import pytest

from core import config as cfgmod
from core.config import ModelResolutionError, ModelsConfigError
from core.tests.config.builders import canonical_config, config_with, provider

INCOMPLETE_ADVICE = (
    "run `python manage.py onboard --provider csghub-lite --models <model>` or "
    "`python manage.py onboard --base-url <url> --api-key <key> --models <model[,model...]> "
    "[--reasoning-effort <effort>]`"
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("csghub-lite.Qwen/Qwen3-0.6B-GGUF", ("csghub-lite", "Qwen/Qwen3-0.6B-GGUF")),
        ("remote.gpt-5.4", ("remote", "gpt-5.4")),
        ("ollama.qwen2.5:7b", ("ollama", "qwen2.5:7b")),
        ("remote:gpt-5.4", ("remote", "gpt-5.4")),
        ("remote", ("remote", "")),
        ("  remote . gpt-5.4 ", ("remote", "gpt-5.4")),
        ("remote.", ("remote.", "")),
        (":gpt", (":gpt", "")),
    ],
)
def test_split_selector_rows(selector, expected):
    assert cfgmod.split_selector(selector) == expected


@pytest.mark.parametrize(
    ("selector", "canonical"),
    [("remote:gpt-5.4", "remote.gpt-5.4"), ("ollama.qwen2.5:7b", "ollama.qwen2.5:7b"), ("remote", "remote")],
)
def test_canonical_selector(selector, canonical):
    assert cfgmod.canonical_selector(selector) == canonical


@pytest.mark.parametrize(
    ("config", "requested", "message"),
    [
        (config_with(), "", "models default is not configured"),
        (config_with(provider("a", ["x"]), provider("b", ["y"])), "", "models default is not configured"),
        (config_with(provider("a", ["x"]), default="nope.x"), "", 'models provider "nope" was not found'),
        (config_with(provider("a", ["x"])), "remote.", 'models provider "remote." was not found'),
        (
            config_with(provider("a", ["x", "y"]), default="a"),
            "",
            'models provider "a" has multiple models; set models.default to "a.x"',
        ),
        (
            config_with(provider("a", ["x"]), default="a.x"),
            "a:zzz",
            'models default "a:zzz" does not match any models.providers entry',
        ),
    ],
)
def test_resolution_errors(config, requested, message):
    with pytest.raises(ModelResolutionError) as info:
        cfgmod.resolve_model(config, requested)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("config", "requested", "selector", "model_id"),
    [
        (config_with(provider("only", ["m1"])), "", "only.m1", "m1"),
        (config_with(provider("p", [])), "", "p", ""),
        (config_with(provider("p", ["m"]), provider("q", ["n"]), default="q"), "", "q.n", "n"),
        (
            config_with(provider("remote", ["gpt-5.4"]), default="remote:gpt-5.4"),
            "",
            "remote.gpt-5.4",
            "gpt-5.4",
        ),
        (
            config_with(provider("o", ["qwen2.5:7b"]), provider("r", ["x"]), default="r.x"),
            "o.qwen2.5:7b",
            "o.qwen2.5:7b",
            "qwen2.5:7b",
        ),
    ],
)
def test_resolution_results(config, requested, selector, model_id):
    resolved = cfgmod.resolve_model(config, requested)
    assert (resolved.selector, resolved.model_id) == (selector, model_id)


def test_resolution_carries_provider_fields_normalised():
    config = config_with(
        provider("remote", ["gpt-5.4"], " https://api.example/v1/ ", " sk ", reasoning_effort=" High "),
        default="remote.gpt-5.4",
    )
    assert cfgmod.resolve_model(config) == cfgmod.ResolvedModel(
        selector="remote.gpt-5.4",
        provider_name="remote",
        model_id="gpt-5.4",
        base_url="https://api.example/v1",
        api_key="sk",
        reasoning_effort="high",
        provider_type="llm-api",
    )


@pytest.mark.parametrize(
    ("config", "flags", "missing"),
    [
        (config_with(), "--base-url, --api-key, --models", ("base_url", "api_key", "model_id")),
        (config_with(provider("p", ["m"], api_key="")), "--api-key", ("api_key",)),
        (config_with(provider("p", [], base_url=" ")), "--base-url, --models", ("base_url", "model_id")),
    ],
)
def test_validation_incomplete(config, flags, missing):
    with pytest.raises(ModelsConfigError) as info:
        cfgmod.validate_models(config)
    assert str(info.value) == f"models config is incomplete ({flags}); {INCOMPLETE_ADVICE}"
    assert (info.value.kind, info.value.missing_fields) == ("incomplete", missing)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (config_with(provider("p", ["m"]), default="x.m"), 'models provider "x" was not found'),
        (
            config_with(provider("p", ["m", "n"])),
            'models provider "p" has multiple models; set models.default to "p.m"',
        ),
        (
            config_with(provider("a", ["m"]), provider("b", [], "", ""), default="a.m"),
            'models provider "b" is invalid: provider "llm-api" is missing required fields: '
            "base_url, api_key, model_id",
        ),
        (
            config_with(provider("a", ["m"]), provider("b", ["n"], api_key=""), default="a.m"),
            'models provider "b" is invalid: provider "llm-api" is missing required fields: api_key',
        ),
    ],
)
def test_validation_invalid(config, error):
    with pytest.raises(ModelsConfigError) as info:
        cfgmod.validate_models(config)
    assert str(info.value) == f"models config is invalid: {error}"
    assert info.value.kind == "invalid"


def test_validation_passes_for_a_complete_config():
    cfgmod.validate_models(canonical_config())


@pytest.mark.parametrize(
    ("fields", "flags"),
    [
        (["default", "model_id", "api_key"], ["--api-key", "--models"]),
        (["model_id", "base_url"], ["--base-url", "--models"]),
        (["default"], ["--models"]),
        ([], []),
    ],
)
def test_missing_model_flags(fields, flags):
    assert cfgmod.missing_model_flags(fields) == flags


def test_llm_timeouts_prefer_settings_overrides(settings):
    config = cfgmod.default_config()
    config.models.request_timeout, config.models.idle_timeout = 100.0, 10.0
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = None
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = None
    assert cfgmod.llm_timeouts(config) == (100.0, 10.0)
    settings.CSGCLAW_LLM_REQUEST_TIMEOUT = 2.0
    settings.CSGCLAW_LLM_IDLE_TIMEOUT = 0.5
    assert cfgmod.llm_timeouts(config) == (2.0, 0.5)
