"""Operations on an agent's existing box (sandbox.md §8.4–§8.6): start, stop, remove, discard and logs."""

from __future__ import annotations

import shutil

from django.conf import settings
from django.db import transaction

from agents.lifecycle.locks import agent_lock
from agents.lifecycle.provisioning import provisioning_queue
from agents.lifecycle.runtime import (
    box_info,
    box_keys,
    box_record,
    current_config,
    failure_detail,
    find_box,
    open_runtime,
)
from agents.models import Agent, AgentStatus
from agents.records import agent_status_record
from agents.selectors import agent_get
from core.config import ConfigError
from core.errors import Conflict, Invalid, NotFound, UpstreamFailed
from sandbox import boxspec
from sandbox.providers.base import BoxNotFound, SandboxError

LOGS_MAX_LINES = 5000
DEFAULT_LOG_LINES = 20


def _require_settled(agent: Agent) -> None:
    if agent.status == AgentStatus.CREATING:
        raise Conflict(f'agent "{agent.id}" is being created')


def agent_start(*, agent_id: str) -> tuple[Agent, bool]:
    """Start the box, or queue provisioning when there is none; returns (agent, provisioning_queued)."""
    agent = agent_get(agent_id)
    _require_settled(agent)
    with agent_lock(agent.id):
        try:
            config = current_config()
            with open_runtime(config, agent) as runtime:
                box = find_box(runtime, agent)
                if box is not None:
                    box.start()
                    info = box_info(box)
        except (SandboxError, ConfigError) as exc:
            agent_status_record(
                agent_id=agent.id,
                status=AgentStatus.FAILED,
                status_detail=failure_detail("start agent", exc),
            )
            raise UpstreamFailed(f"start agent: {exc}") from exc
    if box is None:
        with transaction.atomic():
            provisioning_queue(agent.id)
            # Read before commit: inline provisioning runs on commit, and the answer is the queued state.
            queued = agent_get(agent.id)
        return queued, True
    recorded = box_record(agent.id, info)
    return recorded or agent, False


def agent_stop(*, agent_id: str) -> Agent:
    agent = agent_get(agent_id)
    _require_settled(agent)
    with agent_lock(agent.id):
        try:
            config = current_config()
            with open_runtime(config, agent) as runtime:
                box = find_box(runtime, agent)
                if box is None:
                    raise Conflict(f'agent box "{agent.slug}" not found')
                box.stop()
                info = box_info(box)
        except (SandboxError, ConfigError) as exc:
            agent_status_record(
                agent_id=agent.id, status=AgentStatus.UNKNOWN, status_detail=f"stop agent: {exc}"
            )
            raise UpstreamFailed(f"stop agent: {exc}") from exc
    recorded = box_record(agent.id, info)
    return recorded or agent


def agent_box_remove(*, agent: Agent) -> None:
    """Force-remove the box and the agent directory (sandbox.md §8.5); the shared projects/ stays."""
    try:
        agent_box_discard(agent=agent)
    except (SandboxError, ConfigError) as exc:
        raise UpstreamFailed(f"remove agent box: {exc}") from exc
    directory = boxspec.agent_dir(settings.CSGCLAW_HOME, agent.slug)
    try:
        if directory.exists():
            shutil.rmtree(directory)
    except OSError as exc:
        raise UpstreamFailed(f"remove agent home: {exc}") from exc


def agent_box_discard(*, agent: Agent) -> None:
    """Force-remove the agent's box under every key it may have; its home directory stays."""
    config = current_config()
    with open_runtime(config, agent) as runtime:
        for key in box_keys(agent):
            try:
                runtime.remove(key, force=True)
            except BoxNotFound:
                continue


def log_lines_parse(raw: str) -> int:
    """`?lines=`: blank means 20; otherwise 1–5000 in ASCII digits."""
    if not raw:
        return DEFAULT_LOG_LINES
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= LOGS_MAX_LINES:
        raise Invalid(f"lines must be an integer between 1 and {LOGS_MAX_LINES}")
    return int(raw)


def agent_logs(*, agent_id: str, lines: int) -> str:
    agent = agent_get(agent_id)
    try:
        config = current_config()
        with open_runtime(config, agent) as runtime:
            box = find_box(runtime, agent)
            if box is None:
                raise NotFound(f'agent box "{agent.slug}" not found')
            try:
                return box.logs(lines)
            finally:
                box.close()
    except (SandboxError, ConfigError) as exc:
        raise UpstreamFailed(f"read agent logs: {exc}") from exc
