"""credential_kind and friends (security.md S1.2, S1.3, S2): server token, agent tokens, the placeholder."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from agents import credentials
from agents.models import Agent, AgentRole
from core.config import clear_config_cache

pytestmark = [pytest.mark.timeout(30)]

SERVER_TOKEN = "server-token-for-credentials"


@pytest.fixture
def config(settings, tmp_path):
    def write(text: str) -> None:
        path = tmp_path / "config.toml"
        path.write_text(text)
        settings.CSGCLAW_CONFIG = path
        clear_config_cache()

    write(f'[server]\naccess_token = "{SERVER_TOKEN}"\n')
    credentials.forget_agent_tokens()
    yield write
    credentials.forget_agent_tokens()
    clear_config_cache()


def make_agent(agent_id: str = "u-alice") -> Agent:
    name = agent_id.removeprefix("u-")
    return Agent.objects.create(id=agent_id, name=name, slug=name, role=AgentRole.WORKER)


@pytest.mark.django_db
def test_the_server_token_is_server_and_an_agent_token_is_agent(config):
    agent = make_agent()
    assert credentials.credential_kind(SERVER_TOKEN) == "server"
    assert credentials.credential_kind(agent.api_token) == "agent"
    assert credentials.credential_agent_id(agent.api_token) == agent.id
    assert credentials.credential_agent_id(SERVER_TOKEN) is None


@pytest.mark.django_db
@pytest.mark.parametrize("token", [None, "", "nope", SERVER_TOKEN + "x", SERVER_TOKEN.upper()])
def test_anything_else_is_no_credential(config, token):
    make_agent()
    assert credentials.credential_kind(token) is None


@pytest.mark.django_db
def test_the_placeholder_is_never_a_credential_even_when_configured(config):
    config('[server]\naccess_token = "your_access_token"\n')
    assert credentials.credential_kind("your_access_token") is None
    assert not credentials.is_server_token("your_access_token")


@pytest.mark.django_db
def test_the_placeholder_is_no_credential_even_as_an_agent_token(config):
    make_agent()
    Agent.objects.filter(pk="u-alice").update(api_token="your_access_token")
    assert credentials.credential_kind("your_access_token") is None


@pytest.mark.django_db
def test_an_agent_token_is_case_sensitive(config):
    agent = make_agent()
    Agent.objects.filter(pk=agent.pk).update(api_token="Abc-token-value")
    assert credentials.credential_kind("abc-token-value") is None
    assert credentials.credential_kind("Abc-token-value") == "agent"


@pytest.mark.django_db
def test_a_changed_token_stops_at_once_after_forget(config):
    agent = make_agent()
    old = agent.api_token
    assert credentials.credential_kind(old) == "agent"
    Agent.objects.filter(pk=agent.pk).update(api_token="a-new-token-for-alice")
    credentials.forget_agent_tokens()
    assert credentials.credential_kind(old) is None
    assert credentials.credential_kind("a-new-token-for-alice") == "agent"


@pytest.mark.django_db
def test_a_cached_token_expires_after_the_ttl(config, monkeypatch):
    agent = make_agent()
    now = [1000.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: now[0])
    assert credentials.credential_kind(agent.api_token) == "agent"
    Agent.objects.filter(pk=agent.pk).delete()
    assert credentials.credential_kind(agent.api_token) == "agent"
    now[0] += credentials.AGENT_TOKEN_TTL
    assert credentials.credential_kind(agent.api_token) is None


@pytest.mark.django_db
def test_a_broken_config_keeps_the_last_loaded_server_token(config, settings):
    assert credentials.credential_kind(SERVER_TOKEN) == "server"
    # Rewritten without clearing the cache: an edit in progress while the server runs.
    settings.CSGCLAW_CONFIG.write_text(f'[server]\naccess_token = "{SERVER_TOKEN}"\n[server\n')
    assert credentials.credential_kind(SERVER_TOKEN) == "server"
    assert credentials.credential_kind("your_access_token") is None


@pytest.mark.django_db
def test_a_config_broken_since_start_opens_nothing_but_agent_tokens(config):
    config("[server\n")
    agent = make_agent()
    assert credentials.credential_kind(SERVER_TOKEN) is None
    assert credentials.credential_kind("your_access_token") is None
    assert credentials.credential_kind(agent.api_token) == "agent"


@pytest.mark.django_db
def test_no_auth_is_reported_not_applied(config):
    config(f'[server]\naccess_token = "{SERVER_TOKEN}"\nno_auth = true\n')
    assert credentials.auth_disabled()
    assert credentials.credential_kind("anything") is None


@pytest.mark.django_db(transaction=True)
async def test_the_async_form_answers_like_the_sync_one(config):
    agent = await sync_to_async(make_agent)()
    assert await credentials.acredential_kind(SERVER_TOKEN) == "server"
    assert await credentials.acredential_kind(agent.api_token) == "agent"
    assert await credentials.acredential_kind(agent.api_token) == "agent"
    assert await credentials.acredential_kind("your_access_token") is None
    assert await credentials.acredential_kind("wrong") is None
