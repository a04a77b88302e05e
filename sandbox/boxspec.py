"""An agent's box: host layout, box spec and environment, workspace seeding and PicoClaw file rendering."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.ids import participant_id_of, strip_participant_id
from sandbox.agent_home import agent_home_ensure, directory_ensure, file_write
from sandbox.providers.base import BoxSpec, Mount

GUEST_HOME = "/home/picoclaw"
GUEST_WORKSPACE = f"{GUEST_HOME}/.picoclaw/workspace"
GUEST_PROJECTS = f"{GUEST_WORKSPACE}/projects"
GATEWAY_COMMAND = (
    "/bin/sh",
    "-c",
    "/usr/local/bin/picoclaw gateway -d 1>~/.picoclaw/gateway.log 2>/dev/null",
)
AGENT_ID_LABEL = "csgclaw.agent_id"
RUNTIME_LABEL = "csgclaw.runtime"
MANAGER_SLUG = "manager"
MANAGER_AGENT_ID = "u-manager"

PACKAGE_DIR = Path(__file__).resolve().parent
WORKSPACE_TEMPLATES_DIR = PACKAGE_DIR / "workspace_templates"
# String values of the template that are exactly one of these placeholders are replaced when rendering:
# {{BASE}} box-facing base, {{BOT}} agent id, {{PART}} participant id, {{TOKEN}} server token,
# {{MODEL}} model id, {{MODEL_ID}} the openai/ form of the model id, {{LLM}} the agent's LLM proxy URL.
PICOCLAW_CONFIG_TEMPLATE = PACKAGE_DIR / "picoclaw" / "config.template.json"


def agent_dir(home: Path, slug: str) -> Path:
    return Path(home) / "agents" / slug


def workspace_dir(home: Path, slug: str) -> Path:
    return agent_dir(home, slug) / "workspace"


def runtime_home(home: Path, slug: str, home_dir_name: str) -> Path:
    """The directory a provider's `open()` receives for this agent."""
    return agent_dir(home, slug) / home_dir_name


def picoclaw_dir(home: Path, slug: str) -> Path:
    """Where the agent's PicoClaw files are rendered on the host (done for the manager)."""
    return agent_dir(home, slug) / ".picoclaw"


def projects_dir(home: Path) -> Path:
    return Path(home) / "projects"


def is_manager(*, slug: str, agent_id: str) -> bool:
    return slug == MANAGER_SLUG or agent_id == MANAGER_AGENT_ID


def custom_model_id(model: str) -> str:
    """PicoClaw's provider-qualified model id: `openai/<model>`; `openai:<x>` becomes `openai/<x>`."""
    model = model.strip()
    if not model:
        return ""
    lowered = model.lower()
    if lowered.startswith("openai/"):
        return model
    if lowered.startswith("openai:"):
        return "openai/" + model[len("openai:") :]
    return "openai/" + model


def llm_base_url(base_url: str, agent_id: str) -> str:
    """The agent-scoped LLM proxy (participants.md §6.2); a relative path when no box-facing base is known."""
    return f"{base_url.rstrip('/')}/api/v1/agents/{agent_id}/llm"


def participant_id(agent_id: str) -> str:
    """The participant id of participants.md §1.2 that a box is told it is."""
    return participant_id_of(agent_id)


def feishu_app_for(agent_id: str, apps: Mapping[str, Any]) -> Any | None:
    """The Feishu app table for the agent: `<id>`, then `u-<strip(id)>`, then `<strip(id)>` (§2.8)."""
    stripped = strip_participant_id(agent_id)
    for name in (agent_id, f"u-{stripped}", stripped):
        if name in apps:
            return apps[name]
    return None


def box_environment(
    *,
    base_url: str,
    access_token: str,
    bot_id: str,
    model_id: str,
    feishu_app_id: str = "",
    feishu_app_secret: str = "",
) -> dict[str, str]:
    """Every variable a box receives (participants.md §6.2); the LLM key is the token, never the provider's.

    One environment serves PicoClaw ≤ 2026.5 (bot id) and 2026.6.x (participant id, channel switched on).
    """
    llm = llm_base_url(base_url, bot_id)
    env = {
        "HOME": GUEST_HOME,
        "CSGCLAW_BASE_URL": base_url,
        "PICOCLAW_CHANNELS_CSGCLAW_BASE_URL": base_url,
        "CSGCLAW_ACCESS_TOKEN": access_token,
        "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN": access_token,
        "PICOCLAW_CHANNELS_CSGCLAW_ENABLED": "true",
        "PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID": participant_id(bot_id),
        "PICOCLAW_CHANNELS_CSGCLAW_BOT_ID": bot_id,
        "CSGCLAW_LLM_BASE_URL": llm,
        "OPENAI_BASE_URL": llm,
        "PICOCLAW_CUSTOM_MODEL_BASE_URL": llm,
        "CSGCLAW_LLM_API_KEY": access_token,
        "OPENAI_API_KEY": access_token,
        "PICOCLAW_CUSTOM_MODEL_API_KEY": access_token,
        "CSGCLAW_LLM_MODEL_ID": model_id,
        "OPENAI_MODEL": model_id,
        "PICOCLAW_AGENTS_DEFAULTS_MODEL_NAME": model_id,
        "PICOCLAW_CUSTOM_MODEL_NAME": model_id,
        "PICOCLAW_CUSTOM_MODEL_ID": custom_model_id(model_id),
    }
    if feishu_app_id.strip() and feishu_app_secret.strip():
        env["PICOCLAW_CHANNELS_FEISHU_ENABLED"] = "true"
        env["PICOCLAW_CHANNELS_FEISHU_APP_ID"] = feishu_app_id
        env["PICOCLAW_CHANNELS_FEISHU_APP_SECRET"] = feishu_app_secret
    return env


RESERVED_ENV_KEYS = frozenset({"HOME", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"})
RESERVED_ENV_PREFIXES = ("CSGCLAW_", "PICOCLAW_")


def is_reserved_env_key(key: str) -> bool:
    """A key the box environment owns (participants.md §6.2, upstream `isReservedSandboxEnvKey`)."""
    upper = key.strip().upper()
    return upper in RESERVED_ENV_KEYS or upper.startswith(RESERVED_ENV_PREFIXES)


def permitted_env_extras(environment: Mapping[str, str], extras: Mapping[str, str]) -> dict[str, str]:
    """The `extras` that may join `environment`: none replaces a reserved key the environment already has.

    New keys stay allowed, reserved-looking or not (the local runtime's `CSGCLAW_RUNTIME_*` knobs reach
    built-in boxes this way). Keys are compared as upstream does, trimmed and in any case.
    """
    owned = {key.strip().upper() for key in environment if is_reserved_env_key(key)}
    return {key: value for key, value in extras.items() if key.strip().upper() not in owned}


def merge_box_environment(environment: Mapping[str, str], extras: Mapping[str, str]) -> dict[str, str]:
    """`environment` with the `extras` a provider adds, under the reserved-key rule of §6.2."""
    return {**environment, **permitted_env_extras(environment, extras)}


def build_box_spec(
    *, home: Path, slug: str, agent_id: str, image: str, environment: Mapping[str, str], runtime: str = ""
) -> BoxSpec:
    """The box spec shared by the manager and workers; providers derive their own names from `slug`.

    `runtime` is the agent's own runtime choice, carried as a label only when it made one.
    """
    labels = {AGENT_ID_LABEL: agent_id}
    if runtime:
        labels[RUNTIME_LABEL] = runtime
    return BoxSpec(
        image=image,
        name=slug,
        cmd=list(GATEWAY_COMMAND),
        env=dict(environment),
        mounts=[
            Mount(host_path=str(workspace_dir(home, slug)), guest_path=GUEST_WORKSPACE),
            Mount(host_path=str(projects_dir(home)), guest_path=GUEST_PROJECTS),
        ],
        detach=True,
        auto_remove=False,
        entrypoint=None,
        labels=labels,
    )


def seed_workspace(workspace: Path, *, manager: bool, agent_home: Path | None = None) -> None:
    """Copy the role's template tree into `workspace`, replacing same-name files and keeping the rest.

    The workspace is writable from inside the box, so nothing is written through a link planted there
    (security S5.2): a link on the way is UnsafePath. `agent_home` (default: the workspace's parent) is
    created `0700`.
    """
    workspace = Path(workspace)
    root = agent_home_ensure(workspace.parent if agent_home is None else Path(agent_home))
    source = WORKSPACE_TEMPLATES_DIR / ("manager" if manager else "worker")
    directory_ensure(root, workspace)
    for template in sorted(source.rglob("*")):
        target = workspace / template.relative_to(source)
        if template.is_dir():
            directory_ensure(root, target)
            continue
        # Templates are no secret and the box's own user must read them: their mode, plus owner write.
        file_write(
            root,
            target,
            template.read_bytes(),
            mode=stat.S_IMODE(template.stat().st_mode) | stat.S_IWUSR,
        )


def render_picoclaw_files(
    dest: Path,
    *,
    base_url: str,
    bot_id: str,
    access_token: str,
    model_id: str,
    agent_home: Path | None = None,
) -> None:
    """Write `config.json`, `.security.yml` (0600) and an empty `logs/` into `dest` (0755).

    `dest` lies below `agent_home` (default: its parent, created `0700`), where the box may have planted
    links: a link on the way is UnsafePath and no file is written through one (security S5.2).
    """
    dest = Path(dest)
    root = agent_home_ensure(dest.parent if agent_home is None else Path(agent_home))
    directory_ensure(root, dest / "logs")
    values = {
        "{{BASE}}": base_url,
        "{{BOT}}": bot_id,
        "{{PART}}": participant_id(bot_id),
        "{{TOKEN}}": access_token,
        "{{MODEL}}": model_id,
        "{{MODEL_ID}}": custom_model_id(model_id),
        "{{LLM}}": llm_base_url(base_url, bot_id),
    }
    # Without a base the URLs would be relative, which PicoClaw cannot use: leave them to its defaults.
    omitted = set() if base_url else {"{{BASE}}", "{{LLM}}"}
    template = json.loads(PICOCLAW_CONFIG_TEMPLATE.read_text(encoding="utf-8"))
    config = _fill_placeholders(template, values, omitted)
    config_text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    file_write(root, dest / "config.json", config_text.encode("utf-8"))
    security = _security_yaml(model_id=model_id, access_token=access_token)
    file_write(root, dest / ".security.yml", security.encode("utf-8"))


def _fill_placeholders(node: Any, values: Mapping[str, str], omitted: set[str]) -> Any:
    if isinstance(node, dict):
        return {
            key: _fill_placeholders(value, values, omitted)
            for key, value in node.items()
            if not (isinstance(value, str) and value in omitted)
        }
    if isinstance(node, list):
        return [_fill_placeholders(item, values, omitted) for item in node]
    if isinstance(node, str):
        return values.get(node, node)
    return node


_PLAIN_YAML_SCALAR = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/:@+]*\Z")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _yaml_scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when unambiguous, else double-quoted (JSON strings are valid YAML)."""
    if _PLAIN_YAML_SCALAR.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(":"):
        return text
    return json.dumps(text, ensure_ascii=False)


def _security_yaml(*, model_id: str, access_token: str) -> str:
    return (
        "model_list:\n"
        f"  {_yaml_scalar(model_id + ':0')}:\n"
        "    api_keys:\n"
        f"      - {_yaml_scalar(access_token)}\n"
        "channels: {}\n"
        "web: {}\n"
        "skills: {}\n"
    )
