"""Reads of the bot bridge (bots/selectors.py): which model an agent's LLM calls go to (llm-bridge.md §3)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from agents.models import Agent
from bots import selectors
from bots.tests.llm_bridge import AGENT_ID, BASE_URL, MODEL, make_agent, provider_toml
from core.config import clear_config_cache
from core.errors import NotFound, Unavailable

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("default_config"),
]


def resolved_model_id(agent_id: str = AGENT_ID) -> str:
    return selectors.llm_target_get(agent_id).model.model_id


def test_the_stored_profile_wins(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), provider_toml("zeta", models=["z-1"]))
    make_agent(profile="zeta.z-1", model_id=MODEL)

    target = selectors.llm_target_get(AGENT_ID)

    assert (target.model.provider_name, target.model.model_id) == ("zeta", "z-1")
    assert (target.request_timeout, target.idle_timeout) == (300.0, 60.0)


def test_a_stale_profile_falls_back_to_the_first_provider_listing_the_model_id(write_config):
    write_config(
        provider_toml("b-second", models=["qwen"]),
        provider_toml("a-first", models=["other", "qwen"], base_url="https://a.test/v1/"),
        default="b-second",
    )
    make_agent(profile="gone.qwen", model_id="qwen", reasoning_effort="")

    model = selectors.llm_target_get(AGENT_ID).model

    assert (model.provider_name, model.model_id, model.base_url) == ("a-first", "qwen", "https://a.test/v1")


def test_the_model_id_fallback_honours_the_agents_reasoning_effort(write_config):
    write_config(
        provider_toml("a-low", models=["qwen"], reasoning_effort="low"),
        provider_toml("b-high", models=["qwen"], reasoning_effort=" HIGH "),
        default="a-low",
    )
    make_agent(profile="", model_id="qwen", reasoning_effort="high")

    model = selectors.llm_target_get(AGENT_ID).model

    assert (model.provider_name, model.reasoning_effort) == ("b-high", "high")


def test_the_model_id_fallback_is_only_for_llm_api_agents(write_config):
    write_config(provider_toml("remote", models=[MODEL]), provider_toml("other", models=["qwen"]))
    make_agent(profile="", provider="something-else", model_id="qwen")

    assert resolved_model_id() == MODEL


def test_the_default_selector_is_the_last_fallback(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), default="remote.gpt-4o")
    make_agent(profile="gone.model", model_id="not-listed-anywhere")

    assert resolved_model_id() == "gpt-4o"


def test_nothing_resolving_is_404(write_config):
    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"]), default="")
    make_agent(profile="gone.model", model_id="not-listed-anywhere")

    with pytest.raises(NotFound) as raised:
        selectors.llm_target_get(AGENT_ID)

    assert raised.value.message == f'no llm profile could be resolved for agent "{AGENT_ID}"'


def test_a_missing_config_file_is_an_empty_configuration(settings):
    settings.CSGCLAW_CONFIG.unlink()
    clear_config_cache()
    make_agent()

    with pytest.raises(NotFound, match="no llm profile could be resolved"):
        selectors.llm_target_get(AGENT_ID)


def test_an_unreadable_config_is_unavailable(settings):
    settings.CSGCLAW_CONFIG.write_text("[models]\nrequest_timeout = -1\n")
    clear_config_cache()
    make_agent()

    with pytest.raises(Unavailable) as raised:
        selectors.llm_target_get(AGENT_ID)

    assert raised.value.message.startswith("models config is unavailable: parse models.request_timeout: ")


def test_the_current_config_is_used_without_a_restart(write_config):
    make_agent(profile="remote.gpt-4o", model_id="gpt-4o")
    assert selectors.llm_target_get(AGENT_ID).model.base_url == BASE_URL

    write_config(provider_toml("remote", models=[MODEL, "gpt-4o"], base_url="https://moved.test/v1"))

    assert selectors.llm_target_get(AGENT_ID).model.base_url == "https://moved.test/v1"


def test_timeouts_come_from_config_and_settings_override_them(write_config, settings):
    write_config(provider_toml("remote"), models_extra='request_timeout = "12.5"\nidle_timeout = 7\n')
    make_agent()
    assert selectors.llm_target_get(AGENT_ID).request_timeout == 12.5

    settings.CSGCLAW_LLM_IDLE_TIMEOUT = 0.25

    target = selectors.llm_target_get(AGENT_ID)
    assert (target.request_timeout, target.idle_timeout) == (12.5, 0.25)


# --- the hand-built model-choice read (issue 12: a statement that stays must not drift from the model) --


def test_the_model_choice_statement_reads_what_the_orm_reads():
    # Every field distinct per agent and across agents: a swapped column or a wrong row shows.
    stored = [
        make_agent(),
        make_agent("u-blank", profile="", provider="", model_id="", reasoning_effort=""),
        make_agent(
            "u-odd", profile=" zeta.z-1 ", provider="other", model_id="ünï 🙂", reasoning_effort=" HIGH "
        ),
    ]
    names = [field.name for field in fields(selectors.AgentModelChoice)]

    for agent in stored:
        orm = Agent.objects.values_list(*names).get(pk=agent.pk)
        assert selectors.agent_model_choice_get(agent.pk) == selectors.AgentModelChoice(*orm)
    assert selectors.agent_model_choice_get("u-ghost") is None
