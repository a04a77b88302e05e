"""The sandbox lifecycle of agents (sandbox.md §8): provision, start, stop, remove, logs and live status.

Provider calls are synchronous and slow, so they never run inside a database transaction and never on
the event loop; work on one agent is serialised by its lock, and background work runs on the pools of
`agents.jobs`. By concept: `runtime` (the config, reaching a box), `locks`, `provisioning` (making boxes,
the manager's among them), `boxes` (start, stop, remove, logs), `status` (what boxes report now).

It sits below `agents.services` (which calls it) and above `agents.records`, whose row writes it uses.
The names here are the operations the rest of the project calls: views, admin, the bots app and the
server process import them from this package, and need not know which module holds each.
"""

from agents.lifecycle.boxes import (
    agent_box_discard,
    agent_box_remove,
    agent_logs,
    agent_start,
    agent_stop,
    log_lines_parse,
)
from agents.lifecycle.locks import agent_lock
from agents.lifecycle.provisioning import (
    manager_box_ensure,
    manager_box_hint,
    provisioning_queue,
    provisioning_requeue_stale,
)
from agents.lifecycle.runtime import current_config_for_request
from agents.lifecycle.status import agents_status_observe

__all__ = [
    "agent_box_discard",
    "agent_box_remove",
    "agent_lock",
    "agent_logs",
    "agent_start",
    "agent_stop",
    "agents_status_observe",
    "current_config_for_request",
    "log_lines_parse",
    "manager_box_ensure",
    "manager_box_hint",
    "provisioning_queue",
    "provisioning_requeue_stale",
]
