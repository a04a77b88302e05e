"""Making agents' boxes (sandbox.md §8.2, §8.3): the box spec, background provisioning, the manager's box.

Provider calls are synchronous and slow, so they never run inside a database transaction and never on
the event loop; provisioning runs on the provisioning pool of `agents.jobs`, under the agent's lock.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from django.conf import settings
from django.db import transaction

from agents.jobs import provisioning_pool
from agents.lifecycle.locks import agent_lock
from agents.lifecycle.runtime import (
    box_info,
    box_keys,
    box_record,
    current_config,
    failure_detail,
    find_box,
    open_runtime,
    uses_local_provider,
)
from agents.models import Agent, AgentStatus
from agents.records import agent_status_record, manager_ensure
from agents.selectors import agent_find, agent_get
from core.config import Config, ConfigError, box_facing_base_url, resolve_model
from sandbox import boxspec, runtimes
from sandbox.providers.base import BoxNotFound, SandboxError, SandboxUnavailable

logger = logging.getLogger("csgclaw.sandbox")

# onboard and the start-up bootstrap report progress this often while a box is being created.
PROGRESS_INTERVAL_SECONDS = 10.0
MANAGER_PREFIX = "create bootstrap manager box"
WORKER_PREFIX = "create worker box"
# builtin-runtime.md §10.1: a machine without the chosen sandbox runtime can still run agents locally.
LOCAL_PROVIDER_HINT = (
    'hint: run "manage.py onboard --sandbox-provider local" to use the built-in agent runtime'
)

# The status_detail of agents whose last provisioning failed because the sandbox runtime is missing or
# unreachable; a hint is due only while the agent still shows that very failure.
_unavailable: dict[str, str] = {}


def _model_id_for(config: Config, agent: Agent) -> str:
    if agent.model_id:
        return agent.model_id
    try:
        return resolve_model(config).model_id
    except ConfigError:
        return ""


def box_spec_for(config: Config, agent: Agent) -> boxspec.BoxSpec:
    """Build the box spec and prepare the host side: workspace, shared projects, PicoClaw files."""
    if not settings.CSGCLAW_SANDBOX_PROVIDER_CLASS:
        runtimes.require_runtime_supported(
            provider=config.sandbox.provider, label=agent.runtime, setting=config.sandbox.runtime
        )
    home = Path(settings.CSGCLAW_HOME)
    base_url = box_facing_base_url(config, local_provider=uses_local_provider(config))
    model_id = _model_id_for(config, agent)
    # The agent's own token, never the server's (security.md S2.1): a box that leaks it exposes only itself.
    access_token = agent.api_token
    feishu_app = boxspec.feishu_app_for(agent.id, config.feishu.apps)
    environment = boxspec.box_environment(
        base_url=base_url,
        access_token=access_token,
        bot_id=agent.id,
        model_id=model_id,
        feishu_app_id=feishu_app.app_id if feishu_app else "",
        feishu_app_secret=feishu_app.app_secret if feishu_app else "",
    )
    manager = boxspec.is_manager(slug=agent.slug, agent_id=agent.id)
    boxspec.seed_workspace(boxspec.workspace_dir(home, agent.slug), manager=manager)
    boxspec.projects_dir(home).mkdir(mode=0o755, parents=True, exist_ok=True)
    if manager:
        boxspec.render_picoclaw_files(
            boxspec.picoclaw_dir(home, agent.slug),
            base_url=base_url,
            bot_id=agent.id,
            access_token=access_token,
            model_id=model_id,
        )
    return boxspec.build_box_spec(
        home=home,
        slug=agent.slug,
        agent_id=agent.id,
        image=agent.image or config.bootstrap.manager_image,
        environment=environment,
        runtime=agent.runtime,
    )


def provision(agent_id: str) -> Agent | None:
    """Create (or start) the agent's box and record the outcome; never leaves the agent `creating`."""
    with agent_lock(agent_id):
        agent = agent_find(agent_id)
        if agent is None:
            return None
        prefix = MANAGER_PREFIX if boxspec.is_manager(slug=agent.slug, agent_id=agent.id) else WORKER_PREFIX
        try:
            config = current_config()
            spec = box_spec_for(config, agent)
            with open_runtime(config, agent) as runtime:
                box = find_box(runtime, agent)
                if box is None:
                    box = runtime.create(spec)
                elif box.info().state != AgentStatus.RUNNING:
                    box.start()
                info = box_info(box)
                recorded = box_record(agent_id, info)
                if recorded is None:
                    # Deleted while its box was being made: the box would be orphaned otherwise.
                    runtime.remove(info.id, force=True)
                _unavailable.pop(agent_id, None)
                return recorded
        except Exception as exc:
            logger.warning("%s for agent %s: %s", prefix, agent_id, exc)
            detail = failure_detail(prefix, exc)
            if _caused_by_unavailable_sandbox(exc):
                _unavailable[agent_id] = detail
            else:
                _unavailable.pop(agent_id, None)
            return agent_status_record(agent_id=agent_id, status=AgentStatus.FAILED, status_detail=detail)


def _caused_by_unavailable_sandbox(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it wraps (`get agent box: …`), says the sandbox runtime is unavailable."""
    while exc is not None:
        if isinstance(exc, SandboxUnavailable):
            return True
        exc = exc.__cause__
    return False


def manager_box_hint(config: Config, manager: Agent) -> str:
    """The hint that follows "manager box is not ready" (builtin-runtime.md §10.1), or "".

    Only when a provider other than `local` could not start for want of its runtime: then the local
    provider with the built-in runtime is the way to get agents running on this machine.
    """
    explicit_provider = not settings.CSGCLAW_SANDBOX_PROVIDER_CLASS and config.sandbox.provider != "local"
    unavailable = _unavailable.get(manager.id) == manager.status_detail
    return LOCAL_PROVIDER_HINT if explicit_provider and unavailable else ""


def provisioning_queue(agent_id: str) -> None:
    """Mark the agent `creating` and provision it after the caller's transaction commits."""
    agent_status_record(agent_id=agent_id, status=AgentStatus.CREATING)

    def start() -> None:
        if settings.CSGCLAW_SANDBOX_INLINE:
            provision(agent_id)
        else:
            provisioning_pool.submit(lambda: provision(agent_id))

    transaction.on_commit(start)


def provisioning_requeue_stale() -> int:
    """Agents left `creating` by a previous process get their provisioning queued again."""
    stale = list(Agent.objects.filter(status=AgentStatus.CREATING).values_list("pk", flat=True))
    for agent_id in stale:
        provisioning_queue(agent_id)
    return len(stale)


def _run_with_progress(
    fn: Callable[[], Agent | None], progress: Callable[[float], None] | None
) -> Agent | None:
    if progress is None:
        return fn()
    future = provisioning_pool.submit(fn)
    started = time.monotonic()
    while True:
        try:
            return future.result(timeout=PROGRESS_INTERVAL_SECONDS)
        except FutureTimeout:
            progress(time.monotonic() - started)


def _force_remove_manager_box(config: Config, agent: Agent) -> None:
    with open_runtime(config, agent) as runtime:
        for key in box_keys(agent):
            try:
                runtime.remove(key, force=True)
            except BoxNotFound:
                continue
            except SandboxError as exc:
                raise SandboxError(
                    f'force remove bootstrap manager box "{agent.slug}" ("{key}"): {exc}'
                ) from exc
    shutil.rmtree(boxspec.agent_dir(settings.CSGCLAW_HOME, agent.slug), ignore_errors=True)


def manager_box_ensure(
    *, config: Config, force: bool = False, progress: Callable[[float], None] | None = None
) -> Agent:
    """Ensure the manager row and its box, synchronously (sandbox.md §8.3).

    Never raises for box failures: the returned agent is `running` (or what the box reports) or `failed`
    with a `status_detail` saying why. `progress(elapsed_seconds)` is called while the box is being made.
    """
    agent = manager_ensure(config=config)
    if force:
        with agent_lock(agent.id):
            try:
                _force_remove_manager_box(config, agent)
            except Exception as exc:
                failed = agent_status_record(
                    agent_id=agent.id, status=AgentStatus.FAILED, status_detail=f"{MANAGER_PREFIX}: {exc}"
                )
                return failed or agent
            Agent.objects.filter(pk=agent.id).update(box_id="")
    agent_status_record(agent_id=agent.id, status=AgentStatus.CREATING)
    return _run_with_progress(lambda: provision(agent.id), progress) or agent_get(agent.id)
