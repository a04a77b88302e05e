"""Configuration sources and their order (builtin-runtime.md §1.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_runtime.config import ConfigError, load_settings

REQUIRED = {
    "PICOCLAW_CHANNELS_CSGCLAW_BASE_URL": "http://base.test",
    "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN": "tok",
    "PICOCLAW_CHANNELS_CSGCLAW_BOT_ID": "u-dev",
}


def _env(home: Path, **values: str) -> dict[str, str]:
    return {"HOME": str(home), **REQUIRED, **values}


def _write_config(home: Path, config: dict) -> None:
    (home / ".picoclaw").mkdir(parents=True, exist_ok=True)
    (home / ".picoclaw" / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("PICOCLAW_CHANNELS_CSGCLAW_BASE_URL", "csgclaw base_url is required"),
        ("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID", "csgclaw bot_id is required"),
        ("PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN", "csgclaw access_token is required"),
    ],
)
def test_missing_required_value_names_it(tmp_path, missing, message):
    env = _env(tmp_path)
    env[missing] = "  "
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_environment_wins_over_config_json_in_documented_order(tmp_path):
    _write_config(
        tmp_path,
        {
            "channels": {"csgclaw": {"base_url": "http://cfg", "access_token": "cfg-tok", "bot_id": "u-cfg"}},
            "model_list": [{"api_base": "http://cfg-llm", "api_key": "cfg-key"}],
            "agents": {"defaults": {"model_name": "cfg-model"}},
        },
    )
    home = {"HOME": str(tmp_path)}
    settings = load_settings(home)
    assert (settings.base_url, settings.token, settings.bot_id) == ("http://cfg", "cfg-tok", "u-cfg")
    assert (settings.llm_base_url, settings.llm_api_key, settings.model) == (
        "http://cfg-llm",
        "cfg-key",
        "cfg-model",
    )
    settings = load_settings(
        {
            **home,
            "CSGCLAW_BASE_URL": "http://csg",
            "CSGCLAW_ACCESS_TOKEN": "csg-tok",
            "PICOCLAW_CUSTOM_MODEL_BASE_URL": "http://pico-llm",
            "PICOCLAW_CUSTOM_MODEL_API_KEY": "pico-key",
            "PICOCLAW_CUSTOM_MODEL_NAME": "pico-name",
        }
    )
    assert (settings.base_url, settings.token) == ("http://csg", "csg-tok")
    assert (settings.llm_base_url, settings.llm_api_key, settings.model) == (
        "http://pico-llm",
        "pico-key",
        "pico-name",
    )
    settings = load_settings(
        {
            **home,
            "PICOCLAW_CHANNELS_CSGCLAW_BASE_URL": "http://pico",
            "CSGCLAW_BASE_URL": "http://csg",
            "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN": "pico-tok",
            "CSGCLAW_ACCESS_TOKEN": "csg-tok",
            "PICOCLAW_CHANNELS_CSGCLAW_BOT_ID": "u-env",
            "OPENAI_BASE_URL": "http://openai",
            "CSGCLAW_LLM_BASE_URL": "http://csg-llm",
            "OPENAI_API_KEY": "openai-key",
            "CSGCLAW_LLM_API_KEY": "csg-key",
            "OPENAI_MODEL": "openai-model",
            "CSGCLAW_LLM_MODEL_ID": "csg-model",
        }
    )
    assert (settings.base_url, settings.token, settings.bot_id) == ("http://pico", "pico-tok", "u-env")
    assert (settings.llm_base_url, settings.llm_api_key, settings.model) == (
        "http://openai",
        "openai-key",
        "openai-model",
    )


def test_model_id_loses_its_openai_prefix_and_wins(tmp_path):
    settings = load_settings(
        _env(tmp_path, PICOCLAW_CUSTOM_MODEL_ID="OpenAI/Qwen/Qwen3-0.6B-GGUF", OPENAI_MODEL="other")
    )
    assert settings.model == "Qwen/Qwen3-0.6B-GGUF"
    assert load_settings(_env(tmp_path)).model == "default"


def test_llm_key_falls_back_to_the_token(tmp_path):
    assert load_settings(_env(tmp_path)).llm_api_key == "tok"


@pytest.mark.parametrize(
    ("bot_id", "participant_id", "expected", "role"),
    [
        ("u-manager", "", "pt-manager", "manager"),
        ("u-Alice", "", "pt-Alice", "worker"),
        ("user-agent-bob", "", "pt-bob", "worker"),
        ("u-x", "pt-manager", "pt-manager", "manager"),
    ],
)
def test_participant_id_is_derived_from_the_bot_id(tmp_path, bot_id, participant_id, expected, role):
    env = _env(tmp_path, PICOCLAW_CHANNELS_CSGCLAW_BOT_ID=bot_id)
    if participant_id:
        env["PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID"] = participant_id
    settings = load_settings(env)
    assert settings.participant_id == expected
    assert settings.role == role


def test_config_json_defaults_and_values(tmp_path):
    settings = load_settings(_env(tmp_path))
    assert settings.workspace == tmp_path / ".picoclaw" / "workspace"
    assert (settings.max_tokens, settings.context_window, settings.max_parallel_turns) == (
        32768,
        4 * 32768,
        4,
    )
    assert (settings.health_host, settings.health_port, settings.mention_only) == ("127.0.0.1", 18790, True)
    _write_config(
        tmp_path,
        {
            "agents": {
                "defaults": {
                    "workspace": "~/ws",
                    "max_tokens": 1000,
                    "max_tool_iterations": 7,
                    "temperature": 0.2,
                    "max_parallel_turns": 2,
                    "tool_feedback": {"enabled": True, "max_args_length": 50},
                }
            },
            "channels": {"csgclaw": {"allow_from": ["u-admin"], "group_trigger": {"mention_only": False}}},
            "gateway": {"host": "0.0.0.0", "port": 18800},
            "tools": {
                "exec": {"timeout_seconds": 5, "enable_deny_patterns": False, "custom_deny_patterns": ["x"]},
                "read_file": {"max_read_file_size": 10},
            },
        },
    )
    settings = load_settings(_env(tmp_path))
    assert settings.workspace == tmp_path / "ws"
    assert (settings.max_tokens, settings.context_window, settings.max_tool_iterations) == (1000, 4000, 7)
    assert (settings.temperature, settings.max_parallel_turns) == (0.2, 2)
    assert (settings.tool_feedback_enabled, settings.tool_feedback_max_args_length) == (True, 50)
    assert (settings.allow_from, settings.mention_only) == (("u-admin",), False)
    assert (settings.health_host, settings.health_port) == ("0.0.0.0", 18800)
    assert (settings.exec_timeout_seconds, settings.enable_deny_patterns) == (5, False)
    assert (settings.custom_deny_patterns, settings.max_read_file_size) == (("x",), 10)


def test_wrong_types_in_config_json_keep_defaults(tmp_path):
    _write_config(
        tmp_path, {"agents": {"defaults": {"max_tokens": "big", "temperature": True}}, "gateway": []}
    )
    settings = load_settings(_env(tmp_path))
    assert (settings.max_tokens, settings.temperature, settings.health_port) == (32768, 0.7, 18790)
    (tmp_path / ".picoclaw" / "config.json").write_text("{not json")
    assert load_settings(_env(tmp_path)).max_tokens == 32768


def test_runtime_knobs(tmp_path):
    settings = load_settings(
        _env(
            tmp_path,
            CSGCLAW_RUNTIME_STREAM="BOT",
            CSGCLAW_RUNTIME_CATCHUP_WINDOW="60",
            CSGCLAW_RUNTIME_STREAM_IDLE_TIMEOUT="0.5",
            CSGCLAW_RUNTIME_LLM_TIMEOUT="nan",
            CSGCLAW_RUNTIME_BACKOFF_SCALE="0.01",
            CSGCLAW_RUNTIME_HEALTH_ADDR="127.0.0.1:0",
            CSGCLAW_RUNTIME_TEST_CONNECT_DELAY="2",
            CSGCLAW_RUNTIME_TEST_CRASH="after_inbox",
        )
    )
    assert (settings.stream_mode, settings.catchup_window, settings.stream_idle_timeout) == ("bot", 60.0, 0.5)
    assert (settings.llm_timeout, settings.backoff_scale, settings.health_port) == (120.0, 0.01, 0)
    assert (settings.test_connect_delay, settings.test_crash) == (2.0, "after_inbox")
    assert load_settings(_env(tmp_path, CSGCLAW_RUNTIME_HEALTH_ADDR="off")).health_enabled is False
    assert load_settings(_env(tmp_path, CSGCLAW_RUNTIME_STREAM="carrier-pigeon")).stream_mode == "auto"
