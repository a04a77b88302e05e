"""Builds `Settings` from the box environment and `~/.picoclaw/config.json` (builtin-runtime.md §1.3)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runtime.contracts import Settings, join_url, strip_id

DEFAULT_WORKSPACE = "~/.picoclaw/workspace"
DEFAULT_MAX_TOKENS = 32768
STREAM_MODES = ("auto", "participant", "bot")


class ConfigError(Exception):
    """A required value is missing; the message is PicoClaw's `NewChannel` text."""


def load_settings(environ: Mapping[str, str] | None = None, *, debug: bool = False) -> Settings:
    """Environment first, then config.json; the first non-blank source of each value wins."""
    env = os.environ if environ is None else environ
    home = Path(_expand_home(env.get("HOME", "").strip() or str(Path.home()), ""))
    config = _read_config(home / ".picoclaw" / "config.json")
    channel = _section(config, "channels", "csgclaw")
    defaults = _section(config, "agents", "defaults")
    models = config.get("model_list")
    first_model = models[0] if isinstance(models, list) and models and isinstance(models[0], dict) else {}

    base_url = _first(
        env.get("PICOCLAW_CHANNELS_CSGCLAW_BASE_URL"), env.get("CSGCLAW_BASE_URL"), channel.get("base_url")
    )
    token = _first(
        env.get("PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN"),
        env.get("CSGCLAW_ACCESS_TOKEN"),
        channel.get("access_token"),
    )
    bot_id = _first(env.get("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID"), channel.get("bot_id"))
    if not base_url:
        raise ConfigError("csgclaw base_url is required")
    if not bot_id:
        raise ConfigError("csgclaw bot_id is required")
    if not token:
        raise ConfigError("csgclaw access_token is required")
    participant_id = _first(
        env.get("PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID"), channel.get("participant_id")
    ) or "pt-" + strip_id(bot_id)
    llm_base_url = _first(
        env.get("OPENAI_BASE_URL"),
        env.get("CSGCLAW_LLM_BASE_URL"),
        env.get("PICOCLAW_CUSTOM_MODEL_BASE_URL"),
        first_model.get("api_base"),
    )
    llm_api_key = _first(
        env.get("OPENAI_API_KEY"),
        env.get("CSGCLAW_LLM_API_KEY"),
        env.get("PICOCLAW_CUSTOM_MODEL_API_KEY"),
        first_model.get("api_key"),
        token,
    )
    model = (
        _first(
            _without_openai_prefix(env.get("PICOCLAW_CUSTOM_MODEL_ID")),
            env.get("OPENAI_MODEL"),
            env.get("CSGCLAW_LLM_MODEL_ID"),
            env.get("PICOCLAW_CUSTOM_MODEL_NAME"),
            defaults.get("model_name"),
        )
        or "default"
    )

    workspace = Path(_expand_home(_first(defaults.get("workspace")) or DEFAULT_WORKSPACE, str(home)))
    max_tokens = _int(defaults.get("max_tokens"), DEFAULT_MAX_TOKENS, minimum=1)
    feedback = defaults.get("tool_feedback") if isinstance(defaults.get("tool_feedback"), dict) else {}
    trigger = channel.get("group_trigger") if isinstance(channel.get("group_trigger"), dict) else {}
    gateway = config.get("gateway") if isinstance(config.get("gateway"), dict) else {}
    tools = config.get("tools") if isinstance(config.get("tools"), dict) else {}
    exec_tool = tools.get("exec") if isinstance(tools.get("exec"), dict) else {}
    read_tool = tools.get("read_file") if isinstance(tools.get("read_file"), dict) else {}
    health_host, health_port, health_enabled = _health_addr(
        env.get("CSGCLAW_RUNTIME_HEALTH_ADDR", ""),
        _first(gateway.get("host")) or "127.0.0.1",
        _int(gateway.get("port"), 18790, minimum=0),
    )
    stream_mode = (env.get("CSGCLAW_RUNTIME_STREAM", "") or "auto").strip().lower()
    return Settings(
        base_url=base_url,
        token=token,
        bot_id=bot_id,
        participant_id=participant_id,
        llm_base_url=llm_base_url or join_url(base_url, f"/api/v1/agents/{bot_id}/llm"),
        llm_api_key=llm_api_key,
        model=model,
        home=home,
        workspace=workspace,
        max_tokens=max_tokens,
        max_tool_iterations=_int(defaults.get("max_tool_iterations"), 50, minimum=1),
        temperature=_float(defaults.get("temperature"), 0.7),
        context_window=_int(defaults.get("context_window"), 4 * max_tokens, minimum=1),
        max_parallel_turns=_int(defaults.get("max_parallel_turns"), 4, minimum=1),
        tool_feedback_enabled=_bool(feedback.get("enabled"), False),
        tool_feedback_max_args_length=_int(feedback.get("max_args_length"), 300, minimum=0),
        allow_from=_strings(channel.get("allow_from")),
        mention_only=_bool(trigger.get("mention_only"), True),
        health_host=health_host,
        health_port=health_port,
        health_enabled=health_enabled,
        exec_timeout_seconds=_int(exec_tool.get("timeout_seconds"), 60, minimum=1),
        enable_deny_patterns=_bool(exec_tool.get("enable_deny_patterns"), True),
        custom_deny_patterns=_strings(exec_tool.get("custom_deny_patterns")),
        custom_allow_patterns=_strings(exec_tool.get("custom_allow_patterns")),
        max_read_file_size=_int(read_tool.get("max_read_file_size"), 65536, minimum=1),
        stream_mode=stream_mode if stream_mode in STREAM_MODES else "auto",
        catchup_window=_env_seconds(env, "CSGCLAW_RUNTIME_CATCHUP_WINDOW", 1800.0),
        stream_idle_timeout=_env_seconds(env, "CSGCLAW_RUNTIME_STREAM_IDLE_TIMEOUT", 60.0),
        llm_timeout=_env_seconds(env, "CSGCLAW_RUNTIME_LLM_TIMEOUT", 120.0),
        backoff_scale=_env_seconds(env, "CSGCLAW_RUNTIME_BACKOFF_SCALE", 1.0),
        test_connect_delay=_env_seconds(env, "CSGCLAW_RUNTIME_TEST_CONNECT_DELAY", 0.0),
        test_crash=env.get("CSGCLAW_RUNTIME_TEST_CRASH", "").strip(),
        debug=debug,
    )


def _read_config(path: Path) -> dict[str, Any]:
    """A missing or unreadable config.json counts as empty: the environment alone is enough."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _section(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _first(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _without_openai_prefix(value: str | None) -> str:
    value = (value or "").strip()
    return value[len("openai/") :] if value.lower().startswith("openai/") else value


def _expand_home(value: str, home: str) -> str:
    if value == "~" or value.startswith("~/"):
        return (home or str(Path.home())) + value[1:]
    return value


def _int(value: Any, default: int, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return int(value) if int(value) >= minimum else default


def _float(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item.strip() for item in value if isinstance(item, str) and item.strip())


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A knob that is not a finite number ≥ 0 keeps its default."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def _health_addr(raw: str, host: str, port: int) -> tuple[str, int, bool]:
    """`CSGCLAW_RUNTIME_HEALTH_ADDR` = `host:port` or `off`; anything else keeps config.json's address."""
    raw = raw.strip()
    if raw.lower() == "off":
        return host, port, False
    if raw:
        addr_host, _, addr_port = raw.rpartition(":")
        if addr_port.isascii() and addr_port.isdigit() and int(addr_port) <= 65535:
            return addr_host.strip("[]") or host, int(addr_port), True
    return host, port, True
