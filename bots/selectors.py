"""Reads of the bot bridge: bot bindings, which model an agent's LLM calls go to, and its usage totals."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet, Sum

from agents.models import Agent, AgentRole, AgentStatus, Bot, BotChannel
from agents.selectors import agent_find
from bots.feishu.client import FeishuError, feishu_bot_info
from bots.models import LlmUsage
from core.config import (
    LLM_API_PROVIDER_TYPE,
    Config,
    ConfigError,
    ConfigNotFound,
    ResolvedModel,
    default_config,
    get_config,
    get_config_or_default,
    llm_timeouts,
    resolve_model,
)
from core.errors import Invalid, NotFound, Unavailable
from im.identity import MANAGER_ID
from im.selectors import is_lookup_id


@dataclass(frozen=True)
class LlmTarget:
    """Where one agent's LLM calls go right now, and how long the bridge waits for them."""

    model: ResolvedModel
    request_timeout: float
    idle_timeout: float


@dataclass(frozen=True)
class AgentModelChoice:
    """The stored fields of an agent that pick its model."""

    profile: str
    provider: str
    model_id: str
    reasoning_effort: str


@dataclass(frozen=True)
class LlmUsageTotals:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def llm_target_get(agent_id: str) -> LlmTarget:
    """The agent's model against the *current* config.toml (llm-bridge.md §3).

    Raises NotFound for an unknown agent or a profile that resolves nowhere, Unavailable when
    config.toml exists but cannot be loaded. The agent is looked up first: an unknown agent is 404 even
    while the config is broken.
    """
    agent = agent_model_choice_get(agent_id)
    if agent is None:
        raise NotFound(f'agent "{agent_id}" not found')
    config = _current_config()
    model = _resolve_for_agent(agent, config)
    if model is None:
        raise NotFound(f'no llm profile could be resolved for agent "{agent_id}"')
    request_timeout, idle_timeout = llm_timeouts(config)
    return LlmTarget(model=model, request_timeout=request_timeout, idle_timeout=idle_timeout)


def agent_model_choice_get(agent_id: str) -> AgentModelChoice | None:
    """The stored fields that pick the agent's model; None for an unknown agent.

    Hand-built SQL, because it runs before every LLM call: the ORM's `values_list(...).get(pk=...)` costs
    0.25-0.45 ms more CPU per call on SQLite and 0.35-0.65 ms on PostgreSQL (bench/sql_vs_orm.py), against
    issue 12's 0.3 ms bar. The statement is built from the model's metadata, and bots/tests/test_selectors.py
    runs it beside the ORM on the same rows, so the model and the statement cannot drift apart unnoticed.
    """
    if not is_lookup_id(agent_id):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_agent_model_choice_sql(), [agent_id])
        row = cursor.fetchone()
    return None if row is None else AgentModelChoice(*row)


@cache
def _agent_model_choice_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(Agent._meta.get_field(field.name).column) for field in fields(AgentModelChoice))
    key = quote(Agent._meta.pk.column)
    return f"SELECT {columns} FROM {quote(Agent._meta.db_table)} WHERE {key} = %s"


def agent_api_token(agent_id: str) -> str | None:
    """The agent's own bearer token, None for an unknown agent."""
    # get(), not first(): a primary-key lookup needs no ORDER BY.
    try:
        return Agent.objects.values_list("api_token", flat=True).get(pk=agent_id)
    except Agent.DoesNotExist:
        return None


def llm_usage_totals(agent_id: str) -> LlmUsageTotals:
    """How many LLM calls an agent made through the bridge and the tokens they reported."""
    totals = LlmUsage.objects.filter(agent_id=agent_id).aggregate(
        calls=Count("id"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        total_tokens=Sum("total_tokens"),
    )
    return LlmUsageTotals(**{name: value or 0 for name, value in totals.items()})


def _current_config() -> Config:
    try:
        return get_config()
    except ConfigNotFound:
        # No file yet is an empty configuration; only the default selector fallback can then fail.
        return default_config()
    except ConfigError as exc:
        raise Unavailable(f"models config is unavailable: {exc}") from exc


def _resolve_for_agent(agent: AgentModelChoice, config: Config) -> ResolvedModel | None:
    """The stored profile, else a provider listing the stored model id, else the default selector."""
    if agent.profile.strip():
        resolved = _resolve_selector(config, agent.profile)
        if resolved is not None:
            return resolved
    if agent.provider.strip() in ("", LLM_API_PROVIDER_TYPE) and agent.model_id.strip():
        resolved = _provider_listing(config, agent.model_id.strip(), agent.reasoning_effort.strip().lower())
        if resolved is not None:
            return resolved
    return _resolve_selector(config, "")


def _resolve_selector(config: Config, selector: str) -> ResolvedModel | None:
    try:
        return resolve_model(config, selector)
    except ConfigError:
        return None


def _provider_listing(config: Config, model_id: str, reasoning_effort: str) -> ResolvedModel | None:
    """The first provider by name that lists `model_id` (with the agent's reasoning effort, if it has one)."""
    for name in sorted(config.models.providers):
        provider = config.models.providers[name]
        if model_id not in (listed.strip() for listed in provider.models):
            continue
        provider_effort = provider.reasoning_effort.strip().lower()
        if reasoning_effort and provider_effort != reasoning_effort:
            continue
        return ResolvedModel(
            selector=f"{name}.{model_id}",
            provider_name=name,
            model_id=model_id,
            base_url=provider.base_url.strip().rstrip("/"),
            api_key=provider.api_key.strip(),
            reasoning_effort=provider_effort,
        )
    return None


# --- bot bindings (http-api.md §7.1) ------------------------------------------------------------------

CHANNEL_CHOICES_TEXT = 'channel must be one of "csgclaw" or "feishu"'
ROLE_CHOICES_TEXT = 'role must be one of "manager" or "worker"'


def bot_channel_parse(value: str, *, default: str = "") -> str:
    """A channel query or body value: trimmed, lower-cased, `default` when blank; unknown → Invalid."""
    channel = value.strip().lower() or default
    if channel and channel not in BotChannel.values:
        raise Invalid(CHANNEL_CHOICES_TEXT)
    return channel


def bot_role_parse(value: str, *, required: bool = False) -> str:
    """A role query or body value: trimmed and lower-cased; unknown (or blank when required) → Invalid."""
    role = value.strip().lower()
    if (role or required) and role not in AgentRole.values:
        raise Invalid(ROLE_CHOICES_TEXT)
    return role


def _with_availability(bots: QuerySet[Bot]) -> QuerySet[Bot]:
    running = Agent.objects.filter(pk=OuterRef("agent_id"), status=AgentStatus.RUNNING)
    return bots.annotate(available=Exists(running))


def bot_list(*, channel: str = "", role: str = "") -> list[Bot]:
    """Stored bots in bot order, each with `available`; with `channel=feishu` also the configured apps.

    Checks the filters first (400 texts of §7.1). Resolving a configured app's open_id may call Feishu.
    """
    channel = bot_channel_parse(channel)
    role = bot_role_parse(role)
    stored = Bot.objects.order_by("created_at", "bot_id", "channel")
    if channel:
        stored = stored.filter(channel=channel)
    if role:
        stored = stored.filter(role=role)
    bots = list(_with_availability(stored))
    if channel == BotChannel.FEISHU:
        bots += _configured_feishu_bots(role=role)
    return bots


def _feishu_display_id(bot_id: str) -> str:
    return bot_id.strip().removeprefix("u-")


def _configured_feishu_bots(*, role: str) -> list[Bot]:
    """Unsaved bots for the `[channels.feishu.<id>]` apps that no stored feishu bot stands for, by id.

    An app counts as stored when a feishu bot has its id or its id without `u-`, either way round.
    """
    config, _ = get_config_or_default()
    seen: set[str] = set()
    for stored_id in Bot.objects.filter(channel=BotChannel.FEISHU).values_list("bot_id", flat=True):
        seen |= {stored_id.strip(), _feishu_display_id(stored_id)}
    configured: list[Bot] = []
    for app_id in sorted(key.strip() for key in config.feishu.apps if key.strip()):
        display_id = _feishu_display_id(app_id)
        if not display_id or app_id in seen or display_id in seen:
            continue
        app_role = AgentRole.MANAGER if app_id == MANAGER_ID else AgentRole.WORKER
        if role and app_role != role:
            continue
        seen.add(display_id)
        agent = agent_find(app_id)
        try:
            info = feishu_bot_info(app_id)
        except FeishuError as exc:
            raise Invalid(f'resolve configured feishu bot "{app_id}" open_id: {exc}') from exc
        bot = Bot(
            channel=BotChannel.FEISHU,
            bot_id=app_id,
            name=info.app_name.strip() or display_id,
            role=app_role,
            agent_id=agent.id if agent else "",
            user_id=info.open_id.strip(),
            created_at=None,
        )
        bot.available = agent is not None and agent.status == AgentStatus.RUNNING
        configured.append(bot)
    return configured
