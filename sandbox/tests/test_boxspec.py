"""Tests for sandbox/boxspec.py: layout, environment, box spec, workspace seeding and PicoClaw files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from core.config import FeishuApp
from sandbox import boxspec
from sandbox.boxspec import (
    agent_dir,
    box_environment,
    build_box_spec,
    custom_model_id,
    feishu_app_for,
    is_manager,
    is_reserved_env_key,
    merge_box_environment,
    participant_id,
    permitted_env_extras,
    picoclaw_dir,
    projects_dir,
    render_picoclaw_files,
    runtime_home,
    seed_workspace,
    workspace_dir,
)
from sandbox.providers.base import Mount

pytestmark = pytest.mark.timeout(10)

GATEWAY = "/usr/local/bin/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_host_layout(tmp_path: Path) -> None:
    assert agent_dir(tmp_path, "alice") == tmp_path / "agents" / "alice"
    assert workspace_dir(tmp_path, "alice") == tmp_path / "agents" / "alice" / "workspace"
    assert runtime_home(tmp_path, "alice", "boxlite") == tmp_path / "agents" / "alice" / "boxlite"
    assert picoclaw_dir(tmp_path, "manager") == tmp_path / "agents" / "manager" / ".picoclaw"
    assert projects_dir(tmp_path) == tmp_path / "projects"


def test_worker_environment_has_every_variable() -> None:
    env = box_environment(
        base_url="http://10.0.0.8:18080",
        access_token="shared-token",
        bot_id="u-worker-1",
        model_id="minimax-m2.7",
    )

    llm = "http://10.0.0.8:18080/api/v1/agents/u-worker-1/llm"
    assert env == {
        "HOME": "/home/picoclaw",
        "CSGCLAW_BASE_URL": "http://10.0.0.8:18080",
        "PICOCLAW_CHANNELS_CSGCLAW_BASE_URL": "http://10.0.0.8:18080",
        "CSGCLAW_ACCESS_TOKEN": "shared-token",
        "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN": "shared-token",
        "PICOCLAW_CHANNELS_CSGCLAW_ENABLED": "true",
        "PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID": "pt-worker-1",
        "PICOCLAW_CHANNELS_CSGCLAW_BOT_ID": "u-worker-1",
        "CSGCLAW_LLM_BASE_URL": llm,
        "OPENAI_BASE_URL": llm,
        "PICOCLAW_CUSTOM_MODEL_BASE_URL": llm,
        "CSGCLAW_LLM_API_KEY": "shared-token",
        "OPENAI_API_KEY": "shared-token",
        "PICOCLAW_CUSTOM_MODEL_API_KEY": "shared-token",
        "CSGCLAW_LLM_MODEL_ID": "minimax-m2.7",
        "OPENAI_MODEL": "minimax-m2.7",
        "PICOCLAW_AGENTS_DEFAULTS_MODEL_NAME": "minimax-m2.7",
        "PICOCLAW_CUSTOM_MODEL_NAME": "minimax-m2.7",
        "PICOCLAW_CUSTOM_MODEL_ID": "openai/minimax-m2.7",
    }


def test_manager_environment_with_its_feishu_app() -> None:
    apps = {"u-manager": FeishuApp(app_id="cli_a1", app_secret="s3cret"), "u-dev": FeishuApp(app_id="cli_b2")}
    app = feishu_app_for("u-manager", apps)
    assert app is not None

    env = box_environment(
        base_url="http://example.test/base",
        access_token="your_access_token",
        bot_id="u-manager",
        model_id="Qwen/Qwen3-0.6B-GGUF",
        feishu_app_id=app.app_id,
        feishu_app_secret=app.app_secret,
    )

    assert env["PICOCLAW_CHANNELS_CSGCLAW_BOT_ID"] == "u-manager"
    assert env["PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID"] == "pt-manager"
    assert env["CSGCLAW_LLM_BASE_URL"] == "http://example.test/base/api/v1/agents/u-manager/llm"
    assert env["OPENAI_API_KEY"] == "your_access_token"
    assert env["PICOCLAW_CUSTOM_MODEL_ID"] == "openai/Qwen/Qwen3-0.6B-GGUF"
    assert env["PICOCLAW_CHANNELS_FEISHU_APP_ID"] == "cli_a1"
    assert env["PICOCLAW_CHANNELS_FEISHU_APP_SECRET"] == "s3cret"
    assert env["PICOCLAW_CHANNELS_FEISHU_ENABLED"] == "true"
    assert len(env) == 22


@pytest.mark.parametrize(("app_id", "app_secret"), [("cli_a1", ""), ("", "s3cret"), (" ", " ")])
def test_feishu_variables_need_both_values(app_id: str, app_secret: str) -> None:
    env = box_environment(
        base_url="http://h:1",
        access_token="t",
        bot_id="u-alice",
        model_id="m",
        feishu_app_id=app_id,
        feishu_app_secret=app_secret,
    )

    assert not [key for key in env if "FEISHU" in key]


def test_feishu_variables_are_absent_without_an_app() -> None:
    env = box_environment(base_url="http://h:1", access_token="t", bot_id="u-alice", model_id="m")

    assert not [key for key in env if "FEISHU" in key]


@pytest.mark.parametrize(
    ("bot_id", "expected"),
    [
        ("u-manager", "cli_m"),
        ("manager", "cli_m"),
        ("u-dev", "cli_d"),
        ("pt-dev", "cli_d"),
        ("dev", "cli_dev"),
        ("U-DEV", None),
        ("u-ops", "cli_o"),
        ("u-nobody", None),
    ],
)
def test_feishu_app_lookup_order(bot_id: str, expected: str | None) -> None:
    # participants.md §2.8: `<id>`, then `u-<strip(id)>`, then `<strip(id)>`; the first existing wins.
    apps = {
        "manager": FeishuApp(app_id="cli_m"),
        "u-dev": FeishuApp(app_id="cli_d"),
        "ops": FeishuApp(app_id="cli_o"),
        "dev": FeishuApp(app_id="cli_dev"),
    }

    app = feishu_app_for(bot_id, apps)

    assert (app.app_id if app else None) == expected


@pytest.mark.parametrize(
    ("agent_id", "expected"),
    [
        ("u-manager", "pt-manager"),
        ("u-worker-1", "pt-worker-1"),
        ("u-Alice", "pt-Alice"),
        ("u-agent-bob", "pt-bob"),
        ("bob", "pt-bob"),
        ("u-worker_01", "pt-worker_01"),
    ],
)
def test_participant_id(agent_id: str, expected: str) -> None:
    assert participant_id(agent_id) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("minimax-m2.7", "openai/minimax-m2.7"),
        ("Qwen/Qwen3-0.6B-GGUF", "openai/Qwen/Qwen3-0.6B-GGUF"),
        ("openai/gpt-4o", "openai/gpt-4o"),
        ("OpenAI/gpt-4o", "OpenAI/gpt-4o"),
        ("openai:gpt-4o", "openai/gpt-4o"),
        ("OPENAI:gpt-4o", "openai/gpt-4o"),
        ("", ""),
    ],
)
def test_custom_model_id(model: str, expected: str) -> None:
    assert custom_model_id(model) == expected


def test_empty_base_degrades_to_relative_llm_paths() -> None:
    env = box_environment(base_url="", access_token="t", bot_id="u-alice", model_id="")

    assert env["CSGCLAW_BASE_URL"] == ""
    assert env["OPENAI_BASE_URL"] == "/api/v1/agents/u-alice/llm"
    assert env["PICOCLAW_CUSTOM_MODEL_ID"] == ""


@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("HOME", True),
        ("home", True),
        (" HOME ", True),
        ("OPENAI_BASE_URL", True),
        ("OPENAI_API_KEY", True),
        ("OPENAI_MODEL", True),
        ("openai_model", True),
        ("CSGCLAW_RUNTIME_STREAM", True),
        ("csgclaw_access_token", True),
        ("PICOCLAW_CHANNELS_CSGCLAW_BOT_ID", True),
        ("OPENAI_ORG_ID", False),
        ("HOMEPAGE", False),
        ("PATH", False),
        ("PYTHONPATH", False),
        ("CSGHUB_USER_TOKEN", False),
        ("MY_CSGCLAW_X", False),
    ],
)
def test_is_reserved_env_key(key: str, reserved: bool) -> None:
    assert is_reserved_env_key(key) is reserved


def test_extras_never_replace_a_reserved_key_the_box_environment_has() -> None:
    env = box_environment(
        base_url="http://10.0.0.8:18080", access_token="shared-token", bot_id="u-worker-1", model_id="m"
    )
    extras = {
        "OPENAI_API_KEY": "sk-provider",
        "openai_base_url": "https://provider.example/v1",
        "HOME": "/root",
        "PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID": "pt-someone-else",
        "CSGCLAW_RUNTIME_STREAM": "bot",
        "PYTHONPATH": "/opt/csgclaw/python",
    }

    merged = merge_box_environment(env, extras)

    assert merged == {**env, "CSGCLAW_RUNTIME_STREAM": "bot", "PYTHONPATH": "/opt/csgclaw/python"}
    assert permitted_env_extras(env, extras) == {
        "CSGCLAW_RUNTIME_STREAM": "bot",
        "PYTHONPATH": "/opt/csgclaw/python",
    }


def test_extras_replace_the_non_reserved_keys_they_share_with_the_environment() -> None:
    merged = merge_box_environment(
        {"PYTHONPATH": "/box", "HOME": "/home/picoclaw"}, {"PYTHONPATH": "/runtime"}
    )

    assert merged == {"PYTHONPATH": "/runtime", "HOME": "/home/picoclaw"}


def test_box_spec_has_the_two_mounts_the_command_and_the_label(tmp_path: Path) -> None:
    env = {"HOME": "/home/picoclaw"}

    spec = build_box_spec(
        home=tmp_path, slug="alice-smith", agent_id="u-alice-smith", image="img:1", environment=env
    )

    assert spec.image == "img:1"
    assert spec.name == "alice-smith"
    assert spec.cmd == ["/bin/sh", "-c", GATEWAY]
    assert spec.env == env and spec.env is not env
    assert spec.mounts == [
        Mount(str(tmp_path / "agents" / "alice-smith" / "workspace"), "/home/picoclaw/.picoclaw/workspace"),
        Mount(str(tmp_path / "projects"), "/home/picoclaw/.picoclaw/workspace/projects"),
    ]
    assert (spec.detach, spec.auto_remove, spec.entrypoint) == (True, False, None)
    assert spec.labels == {"csgclaw.agent_id": "u-alice-smith"}


@pytest.mark.parametrize("runtime", ["builtin", "picoclaw"])
def test_box_spec_labels_the_agents_runtime_choice(tmp_path: Path, runtime: str) -> None:
    spec = build_box_spec(
        home=tmp_path, slug="alice", agent_id="u-alice", image="img:1", environment={}, runtime=runtime
    )

    assert spec.labels == {"csgclaw.agent_id": "u-alice", "csgclaw.runtime": runtime}


@pytest.mark.parametrize(
    ("slug", "agent_id", "expected"),
    [
        ("manager", "u-manager", True),
        ("manager", "u-x", True),
        ("boss", "u-manager", True),
        ("alice", "u-alice", False),
    ],
)
def test_is_manager(slug: str, agent_id: str, expected: bool) -> None:
    assert is_manager(slug=slug, agent_id=agent_id) is expected


def test_seeding_picks_the_role_template(tmp_path: Path) -> None:
    seed_workspace(tmp_path / "m", manager=True)
    seed_workspace(tmp_path / "w", manager=False)

    manager_text = (tmp_path / "m" / "AGENTS.md").read_text()
    worker_text = (tmp_path / "w" / "AGENTS.md").read_text()
    assert manager_text.startswith("# You are the manager")
    assert worker_text.startswith("# You are a worker")
    for text in (manager_text, worker_text):
        assert '<at user_id="ID">Name</at>' in text
        assert "projects/" in text
        assert "CSGClaw" in text


def test_seeding_overwrites_templates_and_keeps_other_files(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "AGENTS.md").write_text("edited by the agent")
    (workspace / "notes.md").write_text("keep me")

    seed_workspace(workspace, manager=False)

    assert (workspace / "AGENTS.md").read_text().startswith("# You are a worker")
    assert (workspace / "notes.md").read_text() == "keep me"


def test_seeding_modes_add_owner_write_dirs_are_0755_and_the_agent_home_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    (templates / "worker" / "skills").mkdir(parents=True)
    (templates / "worker" / "AGENTS.md").write_text("hi")
    (templates / "worker" / "AGENTS.md").chmod(0o444)
    (templates / "worker" / "skills" / "run.sh").write_text("#!/bin/sh\n")
    (templates / "worker" / "skills" / "run.sh").chmod(0o555)
    monkeypatch.setattr(boxspec, "WORKSPACE_TEMPLATES_DIR", templates)
    workspace = tmp_path / "agents" / "bob" / "workspace"

    seed_workspace(workspace, manager=False)

    assert mode_of(workspace / "AGENTS.md") == 0o644
    assert mode_of(workspace / "skills" / "run.sh") == 0o755
    assert mode_of(workspace) == 0o755
    assert mode_of(workspace / "skills") == 0o755
    assert mode_of(tmp_path / "agents" / "bob") == 0o700


def test_seeding_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "AGENTS.md").symlink_to(outside)

    seed_workspace(workspace, manager=True)

    assert outside.read_text() == "host file"
    assert not (workspace / "AGENTS.md").is_symlink()


def expected_config(*, base: bool) -> dict:
    csgclaw = {
        "enabled": True,
        "base_url": "http://10.0.0.8:18080",
        "bot_id": "u-manager",
        "participant_id": "pt-manager",
        "access_token": "shared-token",
        "allow_from": [],
        "group_trigger": {"mention_only": True},
    }
    model = {
        "model_name": "minimax-m2.7",
        "model": "openai/minimax-m2.7",
        "api_base": "http://10.0.0.8:18080/api/v1/agents/u-manager/llm",
        "api_key": "shared-token",
    }
    if not base:
        del csgclaw["base_url"], model["api_base"]
    return {
        "version": 1,
        "session": {"dm_scope": "per-channel-peer", "dimensions": ["chat", "topic"]},
        "agents": {
            "defaults": {
                "workspace": "~/.picoclaw/workspace",
                "restrict_to_workspace": False,
                "model_name": "minimax-m2.7",
                "max_tokens": 32768,
                "max_tool_iterations": 50,
                "tool_feedback": {"enabled": True, "max_args_length": 300},
            }
        },
        "channels": {"csgclaw": csgclaw},
        "model_list": [model],
        "gateway": {"host": "127.0.0.1", "port": 18790, "log_level": "fatal"},
        "heartbeat": {"enabled": True, "interval": 30},
    }


def test_render_picoclaw_files_content_and_modes(tmp_path: Path) -> None:
    dest = tmp_path / "agents" / "manager" / ".picoclaw"

    render_picoclaw_files(
        dest,
        base_url="http://10.0.0.8:18080",
        bot_id="u-manager",
        access_token="shared-token",
        model_id="minimax-m2.7",
    )

    config_text = (dest / "config.json").read_text()
    assert json.loads(config_text) == expected_config(base=True)
    assert config_text == json.dumps(expected_config(base=True), indent=2) + "\n"
    assert (dest / ".security.yml").read_text() == (
        "model_list:\n"
        "  minimax-m2.7:0:\n"
        "    api_keys:\n"
        "      - shared-token\n"
        "channels: {}\n"
        "web: {}\n"
        "skills: {}\n"
    )
    assert mode_of(dest / "config.json") == 0o600
    assert mode_of(dest / ".security.yml") == 0o600
    assert mode_of(dest) == 0o755
    assert mode_of(dest / "logs") == 0o755
    assert list((dest / "logs").iterdir()) == []


def test_render_without_base_omits_base_url_and_api_base(tmp_path: Path) -> None:
    render_picoclaw_files(
        tmp_path, base_url="", bot_id="u-manager", access_token="shared-token", model_id="minimax-m2.7"
    )

    assert json.loads((tmp_path / "config.json").read_text()) == expected_config(base=False)


def test_render_quotes_yaml_values_that_need_it(tmp_path: Path) -> None:
    render_picoclaw_files(tmp_path, base_url="", bot_id="u-x", access_token="true", model_id="01-ai/Yi: 6B")

    security = (tmp_path / ".security.yml").read_text()
    assert '  "01-ai/Yi: 6B:0":\n' in security
    assert '      - "true"\n' in security


def test_render_overwrites_and_keeps_existing_logs(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "old.log").write_text("x")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "config.json").chmod(0o644)

    render_picoclaw_files(tmp_path, base_url="http://h:1", bot_id="u-a", access_token="t", model_id="m")

    csgclaw = json.loads((tmp_path / "config.json").read_text())["channels"]["csgclaw"]
    assert (csgclaw["bot_id"], csgclaw["participant_id"]) == ("u-a", "pt-a")
    assert mode_of(tmp_path / "config.json") == 0o600
    assert (tmp_path / "logs" / "old.log").exists()
