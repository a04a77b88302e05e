"""The sandbox lifecycle of agents (sandbox.md §8): provision, start, stop, remove, logs and live status.

Provider calls are synchronous and slow, so they never run inside a database transaction and never on
the event loop. Work on one agent is serialised by a per-agent lock; background provisioning runs on a
small thread pool started lazily in the server process.

It sits below `agents.services` (which calls it) and above `agents.records`, whose row writes it uses:
it never imports services.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from agents.models import Agent, AgentStatus
from agents.records import agent_status_record, manager_ensure
from agents.selectors import agent_find, agent_get
from core.config import (
    Config,
    ConfigError,
    box_facing_base_url,
    get_config_or_default,
    resolve_model,
)
from core.errors import Conflict, Invalid, NotFound, Unavailable, UpstreamFailed
from sandbox import boxspec, runtimes
from sandbox.agent_home import UnsafePath
from sandbox.providers import get_provider
from sandbox.providers.base import Box, BoxInfo, BoxNotFound, SandboxError, SandboxRuntime, SandboxUnavailable

logger = logging.getLogger("csgclaw.sandbox")

# onboard and the start-up bootstrap report progress this often while a box is being created.
PROGRESS_INTERVAL_SECONDS = 10.0
# A status refresh must never hold a listing request for long, whatever the provider does.
STATUS_REFRESH_TIMEOUT_SECONDS = 2.0
LOGS_MAX_LINES = 5000
DEFAULT_LOG_LINES = 20
MANAGER_PREFIX = "create bootstrap manager box"
WORKER_PREFIX = "create worker box"
# builtin-runtime.md §10.1: a machine without the chosen sandbox runtime can still run agents locally.
LOCAL_PROVIDER_HINT = (
    'hint: run "manage.py onboard --sandbox-provider local" to use the built-in agent runtime'
)

# Status checks have their own workers so that slow box creations can never starve them.
STATUS_WORKERS = 8


class DaemonPool:
    """A lazily started pool of daemon threads returning futures.

    Unlike ThreadPoolExecutor, its threads never hold up process exit: a box job cut short by a shutdown
    leaves its agent `creating`, and the next start-up bootstrap queues it again.
    """

    def __init__(self, name: str, size: Callable[[], int]) -> None:
        self._name = name
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[[], object]]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    def submit(self, fn: Callable[[], object]) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn))
        with self._guard:
            if len(self._threads) < max(1, self._size()):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            future, fn = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                close_old_connections()


provisioning_pool = DaemonPool("csgclaw-box", lambda: settings.CSGCLAW_SANDBOX_WORKERS)
status_pool = DaemonPool("csgclaw-status", lambda: STATUS_WORKERS)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_refreshed_at: dict[str, float] = {}
# The status_detail of agents whose last provisioning failed because the sandbox runtime is missing or
# unreachable; a hint is due only while the agent still shows that very failure.
_unavailable: dict[str, str] = {}


@contextmanager
def agent_lock(agent_id: str) -> Iterator[None]:
    """One box operation (provision, start, stop, delete, rotation) per agent at a time (security.md S8).

    Threads of this process queue on a lock of their own. On PostgreSQL a session-level advisory lock also
    holds the other server processes off. It is a database lock without a transaction: a row lock would
    keep a transaction open through the slow provider call. SQLite serves one process, where the thread
    lock is the whole story (an open SQLite write transaction would stall every IM write meanwhile).
    """
    with _locks_guard:
        thread_lock = _locks.setdefault(agent_id, threading.Lock())
    with thread_lock:
        if connection.vendor != "postgresql":
            yield
            return
        key = agent_lock_key(agent_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                # The connection is gone, and PostgreSQL released its session locks with it.
                logger.warning("agent lock of %s: the connection closed before the unlock", agent_id)


def agent_lock_key(agent_id: str) -> int:
    """The advisory-lock key of an agent: 64 bits of a hash, in a namespace of their own."""
    digest = hashlib.sha256(f"csgclaw.agent:{agent_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def current_config() -> Config:
    config, error = get_config_or_default()
    if error is not None:
        raise error
    return config


def current_config_for_request() -> Config:
    """The config for an API request; a config.toml that cannot be loaded is a 503, not a crash."""
    try:
        return current_config()
    except ConfigError as exc:
        raise Unavailable(f"config is unavailable: {exc}") from exc


def log_lines_parse(raw: str) -> int:
    """`?lines=`: blank means 20; otherwise 1–5000 in ASCII digits."""
    if not raw:
        return DEFAULT_LOG_LINES
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= LOGS_MAX_LINES:
        raise Invalid(f"lines must be an integer between 1 and {LOGS_MAX_LINES}")
    return int(raw)


def _uses_local_provider(config: Config) -> bool:
    return not settings.CSGCLAW_SANDBOX_PROVIDER_CLASS and config.sandbox.provider.strip() == "local"


@contextmanager
def open_runtime(config: Config, agent: Agent) -> Iterator[SandboxRuntime]:
    provider = get_provider(config.sandbox, settings.CSGCLAW_SANDBOX_PROVIDER_CLASS)
    home = boxspec.runtime_home(settings.CSGCLAW_HOME, agent.slug, config.sandbox.home_dir_name)
    runtime = provider.open(home)
    try:
        yield runtime
    finally:
        runtime.close()


def box_keys(agent: Agent) -> list[str]:
    """How an agent's box is addressed: its stored id, then its name (sandbox.md §8.1)."""
    return list(dict.fromkeys(key for key in (agent.box_id, agent.slug) if key))


def find_box(runtime: SandboxRuntime, agent: Agent) -> Box | None:
    for key in box_keys(agent):
        try:
            return runtime.get(key)
        except BoxNotFound:
            continue
        except SandboxError as exc:
            raise SandboxError(f"get agent box: {exc}") from exc
    return None


def _box_info(box: Box) -> BoxInfo:
    try:
        return box.info()
    finally:
        box.close()


def _record_box(agent_id: str, info: BoxInfo) -> Agent | None:
    """Save what the box reports (state, detail, id); None when the agent was deleted meanwhile."""
    return agent_status_record(
        agent_id=agent_id, status=info.state, status_detail=info.detail, box_id=info.id
    )


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
    base_url = box_facing_base_url(config, local_provider=_uses_local_provider(config))
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
                info = _box_info(box)
                recorded = _record_box(agent_id, info)
                if recorded is None:
                    # Deleted while its box was being made: the box would be orphaned otherwise.
                    runtime.remove(info.id, force=True)
                _unavailable.pop(agent_id, None)
                return recorded
        except Exception as exc:
            logger.warning("%s for agent %s: %s", prefix, agent_id, exc)
            detail = _failure_detail(prefix, exc)
            if _caused_by_unavailable_sandbox(exc):
                _unavailable[agent_id] = detail
            else:
                _unavailable.pop(agent_id, None)
            return agent_status_record(agent_id=agent_id, status=AgentStatus.FAILED, status_detail=detail)


def _failure_detail(prefix: str, exc: BaseException) -> str:
    """`<prefix>: <error>`; a link the box planted in its home is named alone (security S5.2)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, UnsafePath):
            return str(cause)
        cause = cause.__cause__
    return f"{prefix}: {exc}"


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
                    info = _box_info(box)
        except (SandboxError, ConfigError) as exc:
            agent_status_record(
                agent_id=agent.id,
                status=AgentStatus.FAILED,
                status_detail=_failure_detail("start agent", exc),
            )
            raise UpstreamFailed(f"start agent: {exc}") from exc
    if box is None:
        with transaction.atomic():
            provisioning_queue(agent.id)
            # Read before commit: inline provisioning runs on commit, and the answer is the queued state.
            queued = agent_get(agent.id)
        return queued, True
    recorded = _record_box(agent.id, info)
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
                info = _box_info(box)
        except (SandboxError, ConfigError) as exc:
            agent_status_record(
                agent_id=agent.id, status=AgentStatus.UNKNOWN, status_detail=f"stop agent: {exc}"
            )
            raise UpstreamFailed(f"stop agent: {exc}") from exc
    recorded = _record_box(agent.id, info)
    return recorded or agent


def agent_box_remove(*, agent: Agent) -> None:
    """Force-remove the box and the agent directory (sandbox.md §8.5); the shared projects/ stays."""
    try:
        config = current_config()
        with open_runtime(config, agent) as runtime:
            for key in box_keys(agent):
                try:
                    runtime.remove(key, force=True)
                except BoxNotFound:
                    continue
    except (SandboxError, ConfigError) as exc:
        raise UpstreamFailed(f"remove agent box: {exc}") from exc
    directory = boxspec.agent_dir(settings.CSGCLAW_HOME, agent.slug)
    try:
        if directory.exists():
            shutil.rmtree(directory)
    except OSError as exc:
        raise UpstreamFailed(f"remove agent home: {exc}") from exc


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


def _live_state(config: Config, agent: Agent) -> tuple[str, str, str | None]:
    """(status, status_detail, box_id) as the provider reports it now (sandbox.md §8.7)."""
    try:
        with open_runtime(config, agent) as runtime:
            box = find_box(runtime, agent)
            if box is None:
                return AgentStatus.UNKNOWN, f'agent box "{agent.slug}" not found', None
            info = _box_info(box)
            return info.state, info.detail, info.id
    except SandboxError as exc:
        return AgentStatus.UNKNOWN, str(exc), None
    except Exception as exc:
        # A provider broke its contract (sandbox.md §2: only SandboxError); listing agents must still
        # work, so the agent shows as unknown and the traceback goes to the log.
        logger.exception("status of agent %s: provider %s failed", agent.id, type(exc).__name__)
        return AgentStatus.UNKNOWN, f"{type(exc).__name__}: {exc}", None


def agents_status_refresh(agents: list[Agent]) -> list[Agent]:
    """Refresh settled agents from their provider (2 s each, in parallel, cached for the status TTL)."""
    now = time.monotonic()
    due = [
        agent
        for agent in agents
        if agent.status not in (AgentStatus.CREATING, AgentStatus.FAILED)
        and now - _refreshed_at.get(agent.id, float("-inf")) >= settings.CSGCLAW_AGENT_STATUS_TTL
    ]
    if not due:
        return agents
    try:
        config = current_config()
    except ConfigError as exc:
        logger.warning("agent status refresh skipped: %s", exc)
        return agents
    futures = {agent.id: status_pool.submit(lambda agent=agent: _live_state(config, agent)) for agent in due}
    refreshed: dict[str, Agent] = {}
    for agent in due:
        try:
            status, detail, box_id = futures[agent.id].result(timeout=STATUS_REFRESH_TIMEOUT_SECONDS)
        except FutureTimeout:
            status, detail, box_id = (
                AgentStatus.UNKNOWN,
                f"sandbox did not answer within {STATUS_REFRESH_TIMEOUT_SECONDS:g}s",
                None,
            )
        _refreshed_at[agent.id] = time.monotonic()
        recorded = agent_status_record(agent_id=agent.id, status=status, status_detail=detail, box_id=box_id)
        if recorded is not None:
            refreshed[agent.id] = recorded
    return [refreshed.get(agent.id, agent) for agent in agents]
