"""What agents' boxes report now (sandbox.md §8.7): listing agents asks the providers and shows their
answers, and the answers are recorded in the background, so that reading agents never writes."""

from __future__ import annotations

import copy
import logging
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings

from agents import jobs
from agents.lifecycle.runtime import box_info, current_config, find_box, open_runtime
from agents.models import Agent, AgentStatus
from agents.records import agent_observation_record
from core.config import Config, ConfigError
from sandbox.providers.base import SandboxError

logger = logging.getLogger("csgclaw.sandbox")

# A status refresh must never hold a listing request for long, whatever the provider does.
STATUS_REFRESH_TIMEOUT_SECONDS = 2.0
_refreshed_at: dict[str, float] = {}


@dataclass(frozen=True)
class Observation:
    """What the provider says of an agent's box; `box_id` is None when it named no box."""

    status: str
    detail: str
    box_id: str | None = None

    def shown_on(self, agent: Agent) -> Agent:
        """A copy of `agent` as observed, for the answer; the row itself is the recorder's business."""
        shown = copy.copy(agent)
        shown.status, shown.status_detail = self.status, self.detail
        if self.box_id is not None:
            shown.box_id = self.box_id
        return shown


def agents_status_observe(agents: list[Agent]) -> list[Agent]:
    """The agents as their boxes report them now; writes nothing itself.

    Settled agents not asked within the status TTL are asked in parallel, each answer awaited for 2 s at
    most. Answers, and silences past those 2 s, are recorded in the background (with `agent.updated`
    when they change an agent), while this call returns the agents as observed.
    """
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
    answers = {agent.id: _ask(config, agent) for agent in due}
    shown: dict[str, Agent] = {}
    for agent in due:
        answer = answers[agent.id]
        try:
            observation = answer.result(timeout=STATUS_REFRESH_TIMEOUT_SECONDS)
        except FutureTimeout:
            observation = Observation(
                AgentStatus.UNKNOWN, f"sandbox did not answer within {STATUS_REFRESH_TIMEOUT_SECONDS:g}s"
            )
            jobs.writes_pool.submit(
                lambda agent=agent, observation=observation, answer=answer: _record_silence(
                    agent, observation, answer
                )
            )
        _refreshed_at[agent.id] = time.monotonic()
        shown[agent.id] = observation.shown_on(agent)
    return [shown.get(agent.id, agent) for agent in agents]


def _ask(config: Config, agent: Agent) -> Future[Observation]:
    """Ask the provider on the status pool; the answer is handed to the writes pool before it is returned."""

    def ask() -> Observation:
        observation = _live_state(config, agent)
        jobs.writes_pool.submit(lambda: _record(agent, observation))
        return observation

    return jobs.status_pool.submit(ask)


def _live_state(config: Config, agent: Agent) -> Observation:
    try:
        with open_runtime(config, agent) as runtime:
            box = find_box(runtime, agent)
            if box is None:
                return Observation(AgentStatus.UNKNOWN, f'agent box "{agent.slug}" not found')
            info = box_info(box)
            return Observation(info.state, info.detail, info.id)
    except SandboxError as exc:
        return Observation(AgentStatus.UNKNOWN, str(exc))
    except Exception as exc:
        # A provider broke its contract (sandbox.md §2: only SandboxError); listing agents must still
        # work, so the agent shows as unknown and the traceback goes to the log.
        logger.exception("status of agent %s: provider %s failed", agent.id, type(exc).__name__)
        return Observation(AgentStatus.UNKNOWN, f"{type(exc).__name__}: {exc}")


def _record_silence(agent: Agent, observation: Observation, answer: Future[Observation]) -> None:
    """A late answer queued its own record ahead of this one, and that is the one that counts."""
    if not answer.done():
        _record(agent, observation)


def _record(agent: Agent, observation: Observation) -> None:
    try:
        agent_observation_record(
            seen=agent, status=observation.status, status_detail=observation.detail, box_id=observation.box_id
        )
    except Exception:
        logger.exception("recording the status of agent %s failed", agent.id)
