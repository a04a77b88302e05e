"""Writes of agents that callers use: workers, IM identities, bot bindings, deletion and token rotation.

The top of the agents app: it calls the box operations in `agents.lifecycle`, and both use the row
writes in `agents.records` (status, manager record), so no import runs back up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from agents import lifecycle
from agents.credentials import forget_agent_tokens
from agents.jobs import writes_pool
from agents.models import (
    NAME_MAX,
    Agent,
    AgentRole,
    AgentRuntime,
    AgentStatus,
    Bot,
    BotChannel,
    new_api_token,
)
from agents.records import MANAGER_NAME, ProfileSnapshot, agent_status_record
from agents.selectors import agent_find
from agents.serializers import AgentSerializer
from core.config import Config, ConfigError, resolve_model
from core.errors import Conflict, DomainError, Invalid, NotFound, UpstreamFailed
from im import events
from im import services as im_services
from im.identity import ADMIN_ID, MANAGER_ID, agent_slug
from im.models import MAX_ID_LENGTH, ChatUser
from im.selectors import direct_room_between, user_find
from im.services import check_length
from sandbox.providers.base import SandboxError

logger = logging.getLogger("csgclaw.agents")


@dataclass(frozen=True)
class ImIdentity:
    user: ChatUser
    user_created: bool
    room_created: bool


@transaction.atomic
def agent_im_identity_ensure(*, agent: Agent, announce_reused: bool = False) -> ImIdentity:
    """The agent's IM user and its direct room with the admin, created when missing.

    `user.created` / `room.created` are emitted for what was created, or always with `announce_reused`
    (worker creation announces both even when they were reused, http-api.md §9.2).
    """
    role = AgentRole.MANAGER if agent.id == MANAGER_ID else agent.role
    handle = agent_slug(name=agent.name, agent_id=agent.id, role=role)
    ensured = im_services.user_ensure(user_id=agent.id, name=agent.name, handle=handle, role=role)
    room, room_created = im_services.direct_room_ensure(
        user=ensured.user, title=ensured.user.name, first_sender_id=agent.id
    )
    if ensured.created or announce_reused:
        events.event_append(type=events.USER_CREATED, payload=events.user_payload(ensured.user))
    if room_created or announce_reused:
        im_services.emit_room_created(room)
    return ImIdentity(ensured.user, ensured.created, room_created)


def agent_join_room(*, agent_id: str, room_id: str, inviter_id: str = "", locale: str = "") -> Agent:
    """Add an agent to a room (http-api.md §6.11).

    Two transactions on purpose: the agent's IM identity is ensured (and kept) even when the join
    itself is then refused.
    """
    agent = agent_find(agent_id.strip())
    if agent is None:
        raise NotFound("agent not found")
    try:
        identity = agent_im_identity_ensure(agent=agent)
    except DomainError as exc:
        raise UpstreamFailed(f"ensure agent im user: {exc}") from exc
    im_services.room_add_agent(
        room_id=room_id, agent_user_id=identity.user.id, inviter_id=inviter_id, locale=locale
    )
    return agent


@transaction.atomic
def binding_upsert(
    *,
    bot_id: str,
    name: str,
    role: str,
    agent_id: str,
    user_id: str,
    channel: str = BotChannel.CSGCLAW,
    description: str | None = None,
) -> Bot:
    """Create or refresh the (channel, id) binding; `description=None` keeps the stored one."""
    defaults = {"name": name, "role": role, "agent_id": agent_id, "user_id": user_id}
    if description is not None:
        defaults["description"] = description
    bot, _ = Bot.objects.update_or_create(channel=channel, bot_id=bot_id, defaults=defaults)
    return bot


@transaction.atomic
def bindings_delete_for_agent(*, agent_id: str) -> int:
    deleted, _ = Bot.objects.filter(agent_id=agent_id).delete()
    return deleted


WORKER_DESCRIPTION_MAX = 2000
# Characters that cannot appear in an agent id: it becomes a path segment and a box label. The control
# characters are all of Unicode category Cc: C0, DEL and C1.
_INVALID_ID_CHARS = re.compile(r"[/\s\x00-\x1f\x7f-\x9f]")


def _validate_new_worker(*, name: str, agent_id: str, description: str) -> str:
    """Checks 2–7 of http-api.md §5.2 in order; returns the agent's slug.

    An id made from the name (`u-<name>`, by this route or the bots route) is bad only because the name
    is: it is reported as the name the caller gave, without the internal prefix (security S9).
    """
    if not name:
        raise Invalid("name is required")
    check_length("name", name, NAME_MAX)
    check_length("description", description, WORKER_DESCRIPTION_MAX)
    if name.lower() == MANAGER_NAME:
        raise Invalid(f'name "{name}" is reserved')
    if len(agent_id) > MAX_ID_LENGTH or _INVALID_ID_CHARS.search(agent_id):
        if agent_id == f"u-{name}":
            raise Invalid(f'invalid agent name "{name}"')
        raise Invalid(f'agent id "{agent_id}" is invalid')
    if agent_find(agent_id) is not None or (user_find(agent_id) is not None and agent_find(agent_id) is None):
        raise Invalid(f'agent id "{agent_id}" already exists')
    slug = agent_slug(name=name, agent_id=agent_id, role=AgentRole.WORKER)
    if Agent.objects.filter(Q(name__iexact=name) | Q(slug=slug)).exists():
        raise Invalid(f'agent name "{name}" already exists')
    if ChatUser.objects.filter(handle=slug).exclude(pk=agent_id).exists():
        raise Invalid(f'handle "{slug}" already exists')
    return slug


def _runtime_parse(raw: str) -> str:
    """The requested runtime, checked after the profile (builtin-runtime.md §2.1); blank means default."""
    runtime = raw.strip().lower()
    if runtime not in AgentRuntime.values:
        raise Invalid('runtime must be one of "picoclaw" or "builtin"')
    return runtime


@transaction.atomic
def agent_create(
    *,
    config: Config,
    name: str,
    agent_id: str = "",
    description: str = "",
    profile: str = "",
    runtime: str = "",
    csgclaw_binding: bool = True,
) -> Agent:
    """Create a worker with its IM user, direct room and bot binding; its box is made in the background.

    Everything written here is one transaction (http-api.md §9.2): all of it exists afterwards or none.
    The returned agent is the state the request answers with (`creating`). A Feishu bot request creates
    its worker without the csgclaw binding (`csgclaw_binding=False`).
    """
    name, description, profile = name.strip(), description.strip(), profile.strip()
    agent_id = agent_id.strip() or f"u-{name}"
    slug = _validate_new_worker(name=name, agent_id=agent_id, description=description)
    try:
        snapshot = ProfileSnapshot.of(resolve_model(config, profile))
    except ConfigError as exc:
        raise Invalid(str(exc)) from exc
    runtime = _runtime_parse(runtime)
    agent = Agent(
        id=agent_id,
        name=name,
        slug=slug,
        description=description,
        role=AgentRole.WORKER,
        image=config.bootstrap.manager_image,
        status=AgentStatus.CREATING,
        runtime=runtime,
    )
    snapshot.apply_to(agent)
    try:
        # A savepoint: a concurrent create of the same id that committed first (PostgreSQL checks the key
        # once it has) gets the same answer as one that was already there (security.md S8).
        with transaction.atomic():
            agent.save(force_insert=True)
    except IntegrityError:
        raise Invalid(f'agent id "{agent_id}" already exists') from None
    agent_im_identity_ensure(agent=agent, announce_reused=True)
    if csgclaw_binding:
        binding_upsert(
            bot_id=agent.id,
            name=agent.name,
            role=AgentRole.WORKER,
            agent_id=agent.id,
            user_id=agent.id,
            description=description,
        )
    intro_schedule(agent_id=agent.id)
    lifecycle.provisioning_queue(agent.id)
    # Provisioning and the intro run after commit on their own rows; this instance stays as created.
    return agent


def intro_text(*, name: str, description: str) -> str:
    """The worker intro; a description reads as a label ("Your job: writes release notes."), since users
    write it as a noun phrase or as a verb phrase and "Your responsibility is <description>" fits only one."""
    text = f"@{name} Write this down in your memory: your name is {name}."
    job = description.strip()
    if job:
        text += f" Your job: {job}" + ("" if job[-1] in ".!?" else ".")
    return text


def intro_schedule(*, agent_id: str) -> None:
    """Post the admin's intro after commit: inline with no delay, else later on the writes pool (lost on
    exit)."""

    def post() -> None:
        try:
            intro_post(agent_id=agent_id)
        except Exception:
            logger.exception("intro message for agent %s failed", agent_id)

    delay = settings.CSGCLAW_WORKER_INTRO_DELAY
    if delay <= 0:
        transaction.on_commit(post)
    else:
        transaction.on_commit(lambda: writes_pool.submit_later(delay, post))


@transaction.atomic
def intro_post(*, agent_id: str) -> None:
    """`u-admin` introduces the agent in their direct room, so the agent's stream receives its name."""
    agent = agent_find(agent_id)
    room = direct_room_between(ADMIN_ID, agent_id)
    admin = user_find(ADMIN_ID)
    if agent is None or room is None or admin is None:
        logger.warning("intro message for agent %s skipped: agent, admin or direct room is gone", agent_id)
        return
    im_services.message_post(
        room=room, sender=admin, content=intro_text(name=agent.name, description=agent.description)
    )


def agent_delete(*, agent_id: str) -> None:
    """Remove an agent's box and directory, then its row and bindings (http-api.md §5.4).

    The provider call runs outside any transaction (it can be slow); the database part is atomic.
    """
    # Concurrent deletes of one agent in this process wait here: the later ones find it gone (404)
    # instead of racing the first one's provider calls (security.md S8).
    with lifecycle.agent_lock(agent_id):
        agent = agent_find(agent_id)
        if agent is None:
            raise NotFound("agent not found")
        if agent.id == MANAGER_ID:
            raise Conflict(f'agent "{MANAGER_ID}" is reserved')
        lifecycle.agent_box_remove(agent=agent)
        if not agent_record_delete(agent_id=agent.id):
            raise NotFound("agent not found")


@transaction.atomic
def agent_record_delete(*, agent_id: str) -> bool:
    """Delete the row, bindings and all; False when another delete (any process) got there first."""
    agent = Agent.objects.select_for_update().filter(pk=agent_id).first()
    if agent is None:
        return False
    bindings_delete_for_agent(agent_id=agent.id)
    last_state = AgentSerializer(agent).data
    agent.delete()
    # A cached token of the deleted agent must not outlive it (agents/credentials.py).
    transaction.on_commit(forget_agent_tokens)
    events.event_append(type=events.AGENT_UPDATED, payload={"agent": {**last_state, "status": "deleted"}})
    return True


@dataclass(frozen=True)
class TokenRotation:
    agent_id: str
    rotated_at: datetime


def agent_token_rotate(*, agent_id: str) -> TokenRotation:
    """security.md S2.3: a new own token for the agent, and its box recreated to hold it.

    The token changes first, so the old one stops working even if the box cannot be replaced; a box
    keeps the environment it was created with, hence remove and provision rather than stop and start.
    The home (workspace, PicoClaw files) stays; provisioning renders the files again with the new token.
    """
    agent = agent_find(agent_id)
    if agent is None:
        raise NotFound("agent not found")
    if agent.status == AgentStatus.CREATING:
        raise Conflict(f'agent "{agent.id}" is being created')
    with lifecycle.agent_lock(agent.id):
        rotated = agent_token_replace(agent_id=agent.id)
        try:
            lifecycle.agent_box_discard(agent=rotated)
        except (SandboxError, ConfigError) as exc:
            agent_status_record(
                agent_id=agent.id, status=AgentStatus.FAILED, status_detail=f"rotate agent token: {exc}"
            )
            raise UpstreamFailed(f"rotate agent token: {exc}") from exc
    # Outside the lock: inline provisioning runs on commit and takes the agent's lock itself.
    with transaction.atomic():
        lifecycle.provisioning_queue(agent.id)
    return TokenRotation(agent_id=rotated.id, rotated_at=rotated.updated_at)


@transaction.atomic
def agent_token_replace(*, agent_id: str) -> Agent:
    """Store a fresh `api_token`; once committed, no process cache keeps accepting the old one here."""
    agent = Agent.objects.select_for_update().filter(pk=agent_id).first()
    if agent is None:
        raise NotFound("agent not found")
    agent.api_token = new_api_token()
    agent.save(update_fields=["api_token", "updated_at"])
    transaction.on_commit(forget_agent_tokens)
    return agent
