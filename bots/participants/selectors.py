"""Reads of the participant list and detail (participants.md §4.1): views over existing rows.

On `csgclaw` the admin and every agent, on `feishu` the stored Feishu bots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agents.models import Agent, Bot, BotChannel
from agents.selectors import agent_list, agent_resolve
from core.http import NOT_FOUND_TEXT, ApiError
from core.ids import ADMIN_PARTICIPANT_ID, participant_id_of
from im.aliases import ADMIN_ALIASES
from im.identity import ADMIN_ID
from im.models import ChatUser
from im.selectors import is_lookup_id, users_by_id

HUMAN = "human"
AGENT = "agent"
ADMIN_NAME = "admin"
LOCAL_USER_ID = "local_user_id"
OPEN_ID = "open_id"


@dataclass(frozen=True)
class Participant:
    id: str
    channel: str
    type: str
    name: str
    channel_user_ref: str
    channel_user_kind: str
    user_id: str
    created_at: datetime
    updated_at: datetime
    agent_id: str = ""
    agent_name: str = ""
    user_name: str = ""
    lifecycle_status: str = "active"
    mentionable: bool = True


def _admin_participant(users: dict[str, ChatUser]) -> Participant | None:
    admin = users.get(ADMIN_ID)
    if admin is None:
        return None
    return Participant(
        id=ADMIN_PARTICIPANT_ID,
        channel=BotChannel.CSGCLAW,
        type=HUMAN,
        name=ADMIN_NAME,
        channel_user_ref=ADMIN_ID,
        channel_user_kind=LOCAL_USER_ID,
        user_id=ADMIN_ID,
        user_name=admin.name,
        created_at=admin.created_at,
        updated_at=admin.created_at,
    )


def _agent_participant(agent: Agent, users: dict[str, ChatUser]) -> Participant:
    user = users.get(agent.id)
    return Participant(
        id=participant_id_of(agent.id),
        channel=BotChannel.CSGCLAW,
        type=AGENT,
        name=agent.name,
        channel_user_ref=agent.id,
        channel_user_kind=LOCAL_USER_ID,
        agent_id=agent.id,
        agent_name=agent.name,
        user_id=agent.id,
        user_name=user.name if user is not None else "",
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def _feishu_participants(bots: list[Bot]) -> list[Participant]:
    agent_ids = [bot.agent_id for bot in bots if bot.agent_id]
    agent_names = dict(Agent.objects.filter(id__in=agent_ids).values_list("id", "name"))
    return [
        Participant(
            id=bot.bot_id,
            channel=BotChannel.FEISHU,
            type=AGENT,
            name=bot.name,
            channel_user_ref=bot.user_id,
            channel_user_kind=OPEN_ID,
            agent_id=bot.agent_id,
            agent_name=agent_names.get(bot.agent_id, ""),
            user_id=bot.user_id,
            created_at=bot.created_at,
            updated_at=bot.created_at,
        )
        for bot in bots
    ]


def _csgclaw_participants() -> list[Participant]:
    agents = agent_list()
    users = users_by_id([ADMIN_ID, *(agent.id for agent in agents)])
    admin = _admin_participant(users)
    participants = [_agent_participant(agent, users) for agent in agents]
    return participants if admin is None else [admin, *participants]


def participant_list(*, channel: str, participant_type: str = "", agent_id: str = "") -> list[Participant]:
    """A channel's participants by (created_at, channel, id), filtered by exact type and by the agent that
    `agent_id` names (§1.3); an agent_id that names no agent matches nothing."""
    if channel == BotChannel.FEISHU:
        participants = _feishu_participants(list(Bot.objects.filter(channel=BotChannel.FEISHU)))
    else:
        participants = _csgclaw_participants()
    if participant_type:
        participants = [participant for participant in participants if participant.type == participant_type]
    if agent_id:
        agent = agent_resolve(agent_id)
        wanted = agent.id if agent is not None else None
        participants = [participant for participant in participants if participant.agent_id == wanted]
    return sorted(
        participants, key=lambda participant: (participant.created_at, participant.channel, participant.id)
    )


def _feishu_participant(bot_id: str) -> Participant | None:
    bot = (
        Bot.objects.filter(channel=BotChannel.FEISHU, bot_id=bot_id).first() if is_lookup_id(bot_id) else None
    )
    return _feishu_participants([bot])[0] if bot is not None else None


def _csgclaw_participant(path_id: str) -> Participant | None:
    if path_id in ADMIN_ALIASES:
        return _admin_participant(users_by_id([ADMIN_ID]))
    agent = agent_resolve(path_id)
    return _agent_participant(agent, users_by_id([agent.id])) if agent is not None else None


def participant_get(*, channel: str, participant_id: str) -> Participant:
    """The participant a path id names: §1.3 on csgclaw, the exact bot id on feishu; else 404."""
    find = _feishu_participant if channel == BotChannel.FEISHU else _csgclaw_participant
    participant = find(participant_id)
    if participant is None:
        raise ApiError(404, NOT_FOUND_TEXT)
    return participant
