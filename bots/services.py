"""Writes of the bot bridge: bot send, and bot bindings with the agents and IM users behind them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from agents import lifecycle
from agents.models import NAME_MAX, Agent, AgentRole, AgentStatus, Bot, BotChannel
from agents.records import manager_ensure
from agents.selectors import agent_find
from agents.services import (
    WORKER_DESCRIPTION_MAX,
    agent_create,
    agent_delete,
    agent_im_identity_ensure,
    binding_upsert,
)
from bots.feishu.client import FeishuError, feishu_app_configured, feishu_bot_info
from bots.selectors import bot_channel_parse, bot_role_parse
from core.config import Config
from core.errors import DomainError, Invalid, NotFound
from im import selectors as im_selectors
from im import services as im_services
from im.attachments.storage import IncomingFile
from im.identity import MANAGER_ID
from im.models import Message
from im.selectors import is_lookup_id


@transaction.atomic
def bot_message_send(
    *, bot_id: str, room_id: str, text: str, chat_id: str = "", files: Sequence[IncomingFile] = ()
) -> Message:
    """Post `text` into a room as the bot (http-api.md §7.5); the bot need not be a member.

    `chat_id` is what older PicoClaw builds send instead of `room_id`. `files` (a multipart send, issue 14
    extension) are validated after the route's checks, as on the other sends (threads-attachments.md
    §2.5); with at least one the text may be empty. Bot messages stay top-level.
    """
    room_id = room_id.strip() or chat_id.strip()
    text = text.strip()
    if not room_id:
        raise Invalid("room_id is required")
    if not text and not files:
        raise Invalid("text is required")
    sender = im_selectors.user_find(bot_id)
    if sender is None:
        raise Invalid("sender not found")
    room = im_selectors.room_find(room_id)
    if room is None:
        raise Invalid("room not found")
    validated = im_services.attachments_validate(list(files))
    return im_services.message_post(room=room, sender=sender, content=text, files=validated)


# --- bots (http-api.md §7.2, §7.3, §9.5) ----------------------------------------------------------------


@dataclass(frozen=True)
class _FeishuUser:
    """A Feishu bot's user id as resolved before the write transaction, or the error to report for it."""

    user_id: str
    error: str = ""


def bot_create(
    *, config: Config, name: str, role: str, channel: str = "", bot_id: str = "", description: str = ""
) -> Bot:
    """Create or refresh the bot `(channel, id)` and ensure the agent and channel user behind it.

    Idempotent: re-posting refreshes the binding and restores a deleted IM user. The returned bot carries
    `available` as of the write (a worker created here is still `creating`, so it is not available).
    Checks run in the order of http-api.md §7.2. A Feishu open_id is asked before the transaction, so the
    network call never holds SQLite's write lock or PostgreSQL's event lock; its failure is still reported
    at check 5, after the worker checks, and then nothing is written.
    """
    name, description, bot_id = name.strip(), description.strip(), bot_id.strip()
    if not name:
        raise Invalid("name is required")
    role = bot_role_parse(role, required=True)
    channel = bot_channel_parse(channel, default=BotChannel.CSGCLAW)
    im_services.check_length("name", name, NAME_MAX)
    im_services.check_length("description", description, WORKER_DESCRIPTION_MAX)
    if role == AgentRole.MANAGER and bot_id not in ("", MANAGER_ID):
        raise Invalid(f'manager bot id must be "{MANAGER_ID}"')
    agent_id = MANAGER_ID if role == AgentRole.MANAGER else bot_id or f"u-{name}"
    feishu_user = _feishu_user_resolve(agent_id) if channel == BotChannel.FEISHU else None
    return _bot_records_ensure(
        config=config,
        name=name,
        role=role,
        channel=channel,
        agent_id=agent_id,
        description=description,
        feishu_user=feishu_user,
    )


def _feishu_user_resolve(agent_id: str) -> _FeishuUser:
    """The configured app's bot open_id, else the agent id itself (http-api.md §2.5)."""
    if not feishu_app_configured(agent_id):
        return _FeishuUser(user_id=agent_id)
    try:
        return _FeishuUser(user_id=feishu_bot_info(agent_id).open_id)
    except FeishuError as exc:
        return _FeishuUser(user_id="", error=str(exc))


@transaction.atomic
def _bot_records_ensure(
    *,
    config: Config,
    name: str,
    role: str,
    channel: str,
    agent_id: str,
    description: str,
    feishu_user: _FeishuUser | None,
) -> Bot:
    if role == AgentRole.MANAGER:
        agent = _manager_agent_ensure(config)
    else:
        agent = _worker_agent_ensure(
            config=config, name=name, agent_id=agent_id, description=description, channel=channel
        )
    if feishu_user is None:
        user_id = _im_user_ensure(agent)
    elif feishu_user.error:
        raise Invalid(f"failed to ensure feishu user: {feishu_user.error}")
    else:
        user_id = feishu_user.user_id
    bot = binding_upsert(
        bot_id=agent.id,
        name=name if role == AgentRole.MANAGER else agent.name,
        role=role,
        agent_id=agent.id,
        user_id=user_id,
        channel=channel,
        description=description,
    )
    bot.available = agent.status == AgentStatus.RUNNING
    return bot


def _manager_agent_ensure(config: Config) -> Agent:
    """The manager agent; when missing it is created as onboarding does and its box is queued."""
    agent = agent_find(MANAGER_ID)
    if agent is not None:
        return agent
    agent = manager_ensure(config=config, status=AgentStatus.CREATING)
    lifecycle.provisioning_queue(agent.id)
    return agent


def _worker_agent_ensure(
    *, config: Config, name: str, agent_id: str, description: str, channel: str
) -> Agent:
    """The worker agent `agent_id`, reused, or created with the full chain of http-api.md §9.2."""
    agent = agent_find(agent_id)
    if agent is None:
        # Only a csgclaw bot request gets the csgclaw binding of the worker chain.
        return agent_create(
            config=config,
            name=name,
            agent_id=agent_id,
            description=description,
            csgclaw_binding=channel == BotChannel.CSGCLAW,
        )
    if agent.role != AgentRole.WORKER:
        raise Invalid(f'agent id "{agent.id}" already exists with role "{agent.role}"')
    return agent


def _im_user_ensure(agent: Agent) -> str:
    """The agent's IM user and admin direct room; events only for what this call creates."""
    try:
        return agent_im_identity_ensure(agent=agent).user.id
    except DomainError as exc:
        raise Invalid(f"failed to ensure im user: {exc.message}") from exc


def bot_delete(*, bot_id: str, channel: str = "") -> None:
    """Delete the bot `(channel, id)` with the chain of http-api.md §9.5.

    The binding and the IM user go in one transaction. The backing agent is deleted afterwards, because
    removing its box is a slow provider call that must not hold the database; if that fails, the bot
    stays deleted and the agent stays, as upstream.
    """
    channel = bot_channel_parse(channel, default=BotChannel.CSGCLAW)
    deleted = _bot_binding_delete(bot_id=bot_id, channel=channel)
    agent_id = deleted.agent_id.strip()
    if deleted.role != AgentRole.WORKER or not agent_id or Bot.objects.filter(agent_id=agent_id).exists():
        return
    try:
        agent_delete(agent_id=agent_id)
    except NotFound:
        # Already gone (deleted meanwhile): what this step wants is true.
        return
    except DomainError as exc:
        raise Invalid(f'delete backing agent "{agent_id}": {exc.message}') from exc


@transaction.atomic
def _bot_binding_delete(*, bot_id: str, channel: str) -> Bot:
    bot = None
    if is_lookup_id(bot_id):
        bot = Bot.objects.select_for_update().filter(channel=channel, bot_id=bot_id).first()
    if bot is None:
        raise NotFound(f'bot "{bot_id}" not found')
    bot.delete()
    if channel == BotChannel.CSGCLAW:
        user_id = bot.user_id.strip() or bot.bot_id
        try:
            im_services.user_delete(user_id=user_id)
        except DomainError as exc:
            # A user already gone is what deleting the bot wants anyway; the spec ignores "not found".
            if not isinstance(exc, NotFound):
                raise Invalid(f'delete csgclaw user "{user_id}": {exc.message}') from exc
    return bot
