"""agents/lifecycle/status.py on the fake sandbox provider: what boxes report now, shown without writing and
recorded in the background (sandbox.md §8.7)."""

from __future__ import annotations

import time

import pytest

from agents.lifecycle import provisioning, status
from agents.models import Agent, AgentRole, AgentStatus
from agents.records import agent_status_record
from agents.tests.factories import make_worker, reload
from im import events
from im.tests.factories import event_mark, event_types_after, events_after
from sandbox.providers.fake import FakeProvider

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]


class HangingProvider(FakeProvider):
    """A runtime that takes far longer to open than a status refresh may wait."""

    def open(self, home_dir):
        time.sleep(1.0)
        return super().open(home_dir)


class ContractBreakingProvider(FakeProvider):
    """A provider (a third-party one, say) that raises something other than a SandboxError."""

    def open(self, home_dir):
        raise KeyError("spec")


@pytest.fixture
def running_alice(fake_boxes) -> Agent:
    make_worker()
    return provisioning.provision("u-alice")


@pytest.mark.django_db
def test_a_box_removed_behind_our_back_shows_unknown_at_once_and_is_recorded_in_the_background(
    running_alice, fake_boxes, held_writes
):
    fake_boxes.remove_behind_our_back("alice")
    mark = event_mark()

    [agent] = status.agents_status_observe([reload()])

    assert (agent.status, agent.status_detail) == ("unknown", 'agent box "alice" not found')
    assert (reload().status, event_types_after(mark)) == (AgentStatus.RUNNING, [])
    held_writes.run()
    assert (reload().status, reload().status_detail) == ("unknown", 'agent box "alice" not found')
    [updated] = events_after(mark)
    assert updated.type == events.AGENT_UPDATED
    assert updated.payload["agent"]["status"] == "unknown"


@pytest.mark.django_db
def test_observing_follows_the_box_state(running_alice, fake_boxes, held_writes):
    fake_boxes.stop_behind_our_back("alice")

    [agent] = status.agents_status_observe([reload()])
    held_writes.run()

    assert (agent.status, reload().status) == (AgentStatus.STOPPED, AgentStatus.STOPPED)


@pytest.mark.django_db
def test_an_unchanged_box_writes_nothing(running_alice, held_writes):
    before = reload()
    mark = event_mark()

    [agent] = status.agents_status_observe([before])
    held_writes.run()

    assert agent.status == AgentStatus.RUNNING
    assert (reload().updated_at, event_types_after(mark)) == (before.updated_at, [])


@pytest.mark.django_db
def test_a_write_after_the_observation_wins_over_it(running_alice, fake_boxes, held_writes):
    fake_boxes.remove_behind_our_back("alice")
    [observed] = status.agents_status_observe([reload()])
    agent_status_record(agent_id="u-alice", status=AgentStatus.STOPPED)
    mark = event_mark()

    held_writes.run()

    assert observed.status == AgentStatus.UNKNOWN
    assert (reload().status, event_types_after(mark)) == (AgentStatus.STOPPED, [])


@pytest.mark.django_db
def test_a_provider_error_shows_unknown_with_its_text(running_alice, fail_sandbox):
    fail_sandbox("info")

    [agent] = status.agents_status_observe([reload()])

    assert (agent.status, agent.status_detail) == ("unknown", "fake sandbox: info failed")


@pytest.mark.django_db
def test_a_provider_that_breaks_its_contract_shows_unknown(settings, caplog):
    make_worker(status=AgentStatus.RUNNING)
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = f"{__name__}.ContractBreakingProvider"

    [agent] = status.agents_status_observe([reload()])

    assert (agent.status, agent.status_detail) == ("unknown", "KeyError: 'spec'")
    assert "status of agent u-alice: provider KeyError failed" in caplog.text


@pytest.mark.django_db
def test_the_box_id_of_a_box_found_by_name_is_shown_and_recorded(running_alice, held_writes):
    Agent.objects.filter(pk="u-alice").update(box_id="", status=AgentStatus.UNKNOWN)

    [agent] = status.agents_status_observe([reload()])
    held_writes.run()

    assert (agent.status, agent.box_id) == ("running", "fake-alice")
    assert (reload().status, reload().box_id) == ("running", "fake-alice")


@pytest.mark.django_db
def test_creating_and_failed_agents_are_left_alone(fail_sandbox, held_writes):
    make_worker("u-new", name="New", status=AgentStatus.CREATING)
    Agent.objects.create(
        id="u-broken", name="Broken", slug="broken", role=AgentRole.WORKER, status="failed", status_detail="x"
    )

    observed = status.agents_status_observe(list(Agent.objects.order_by("id")))

    assert [(agent.id, agent.status) for agent in observed] == [
        ("u-broken", "failed"),
        ("u-new", "creating"),
    ]
    assert held_writes.jobs == []


@pytest.mark.django_db
def test_an_observation_is_cached_for_the_status_ttl(settings, running_alice, fake_boxes):
    settings.CSGCLAW_AGENT_STATUS_TTL = 60
    status.agents_status_observe([reload()])
    fake_boxes.remove_behind_our_back("alice")

    [cached] = status.agents_status_observe([reload()])
    settings.CSGCLAW_AGENT_STATUS_TTL = 0
    [fresh] = status.agents_status_observe([reload()])

    assert cached.status == AgentStatus.RUNNING
    assert fresh.status == AgentStatus.UNKNOWN


@pytest.mark.django_db
def test_a_hanging_provider_is_never_waited_for_long_and_its_silence_is_recorded(
    settings, monkeypatch, held_writes
):
    make_worker(status=AgentStatus.RUNNING)
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = f"{__name__}.HangingProvider"
    monkeypatch.setattr(status, "STATUS_REFRESH_TIMEOUT_SECONDS", 0.2)
    started = time.monotonic()

    [agent] = status.agents_status_observe([reload()])
    answered_within = time.monotonic() - started
    held_writes.run()

    assert answered_within < 0.9
    silence = ("unknown", "sandbox did not answer within 0.2s")
    assert (agent.status, agent.status_detail) == silence
    assert (reload().status, reload().status_detail) == silence
