"""Participant ids (participants.md §1.2, §1.3): strip, derived ids, and path id resolution order."""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentRole
from bots.participants.identity import (
    ParticipantRef,
    participant_agent_id,
    participant_agent_token,
    participant_id_of,
    participant_resolve,
    strip_participant_id,
)
from im.tests.factories import make_agent

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("value", "stripped"),
    [
        ("u-agent-bob", "bob"),
        ("pt-Alice", "Alice"),
        ("admin", "admin"),
        ("  user-pt-u-x  ", "x"),
        ("agent-manager", "manager"),
        ("u-", ""),
        ("bob-u-", "bob-u-"),
    ],
)
def test_strip(value: str, stripped: str) -> None:
    assert strip_participant_id(value) == stripped


@pytest.mark.parametrize(
    ("subject", "participant_id"),
    [
        ("u-admin", "pt-admin"),
        ("u-manager", "pt-manager"),
        ("u-Alice", "pt-Alice"),
        ("u-worker_01", "pt-worker_01"),
        ("bob", "pt-bob"),
    ],
)
def test_derived_ids(subject: str, participant_id: str) -> None:
    assert participant_id_of(subject) == participant_id


@pytest.fixture
def team(db) -> None:
    make_agent("u-manager", name="manager", role=AgentRole.MANAGER)
    make_agent("u-Alice", name="Alice")
    make_agent("u-worker_01", name="worker_01")


@pytest.mark.parametrize(
    ("path_id", "agent_id"),
    [
        ("pt-alice", "u-Alice"),
        ("agent-Alice", "u-Alice"),
        ("alice", "u-Alice"),
        ("worker_01", "u-worker_01"),
        ("pt-worker_01", "u-worker_01"),
        ("u-manager", "u-manager"),
        ("manager", "u-manager"),
        ("pt-manager", "u-manager"),
        ("agent-manager", "u-manager"),
        (" u-Alice ", "u-Alice"),
    ],
)
def test_resolves_agents(team: None, path_id: str, agent_id: str) -> None:
    assert participant_agent_id(path_id) == agent_id
    ref = participant_resolve(path_id)
    assert ref.agent_id == ref.user_id == agent_id
    assert not ref.is_admin


@pytest.mark.parametrize("path_id", ["admin", "u-admin", "user-admin", "pt-admin"])
def test_admin_aliases(team: None, path_id: str) -> None:
    assert participant_resolve(path_id) == ParticipantRef(
        participant_id="pt-admin", user_id="u-admin", agent_id="", is_admin=True
    )
    assert participant_agent_id(path_id) is None


def test_canonical_participant_id_of_a_resolved_agent(team: None) -> None:
    assert participant_resolve("pt-alice").participant_id == "pt-Alice"
    assert participant_resolve("u-manager").participant_id == "pt-manager"


@pytest.mark.parametrize(("path_id", "participant_id"), [("pt-ghost", "pt-ghost"), ("u-ghost", "pt-ghost")])
def test_unresolved(team: None, path_id: str, participant_id: str) -> None:
    assert participant_resolve(path_id) == ParticipantRef(participant_id=participant_id)
    assert participant_agent_id(path_id) is None


def test_exact_agent_id_wins_over_stripped_match(team: None) -> None:
    make_agent("u-x", name="x")
    make_agent("pt-x", name="ptx")
    assert participant_agent_id("pt-x") == "pt-x"
    assert participant_agent_id("x") == "u-x"


def test_prefixed_ids_win_in_their_order_then_agent_order(db) -> None:
    make_agent("bob", name="bob1")
    make_agent("agent-bob", name="bob2")
    assert participant_agent_id("pt-bob") == "agent-bob"
    make_agent("u-bob", name="bob3")
    assert participant_agent_id("pt-bob") == "u-bob"


def test_slug_is_the_last_resort(db) -> None:
    make_agent("u-123", name="Carol")
    assert participant_agent_id("pt-carol") == "u-123"


def test_manager_alias_without_a_manager_agent_is_unresolved(db) -> None:
    assert participant_agent_id("pt-manager") is None


@pytest.mark.parametrize(("path_id", "agent_id"), [("pt-alice", "u-Alice"), ("pt-manager", "u-manager")])
def test_the_token_is_the_resolved_agents_own(team: None, path_id: str, agent_id: str) -> None:
    assert participant_agent_token(path_id) == Agent.objects.get(pk=agent_id).api_token


@pytest.mark.parametrize("path_id", ["pt-admin", "pt-ghost", "x" * 129])
def test_the_admin_and_unresolved_ids_have_no_agent_token(team: None, path_id: str) -> None:
    assert participant_agent_token(path_id) is None
