"""agents/lifecycle/provisioning.py on the fake sandbox provider: provisioning a worker's box and the
manager box (sandbox.md §4, §5, §6, §8.2, §8.3)."""

from __future__ import annotations

import json
import threading

import pytest

from agents.lifecycle import provisioning
from agents.models import Agent, AgentRole, AgentStatus
from agents.tests.conftest import BOX_BASE_URL, PROVIDER_API_KEY, PROVIDER_BASE_URL
from agents.tests.factories import make_worker, reload
from core.config import FeishuApp, clear_config_cache, load_config, save_config
from im.identity import MANAGER_ID
from im.tests.factories import event_mark, events_after

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("agent_config")]


# --- provision (§8.2) -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_provision_creates_and_records_a_running_box(csgclaw_home, fake_boxes):
    make_worker()
    mark = event_mark()

    agent = provisioning.provision("u-alice")

    assert (agent.status, agent.status_detail, agent.box_id) == ("running", "", "fake-alice")
    assert reload().status == AgentStatus.RUNNING
    assert fake_boxes.operations("alice") == ["create", "info"]
    [updated] = events_after(mark)
    assert updated.payload["agent"]["status"] == "running"
    assert (csgclaw_home / "agents" / "alice" / "workspace" / "AGENTS.md").is_file()
    assert (csgclaw_home / "projects").is_dir()


@pytest.mark.django_db
def test_box_spec_carries_the_agent_model_and_base_url_but_never_the_provider_key(
    agent_config, csgclaw_home, fake_boxes
):
    alice = make_worker(model_id="qwen2.5:7b")

    provisioning.provision("u-alice")

    record = fake_boxes.record("alice")
    env = record["spec"]["env"]
    box_base = agent_config.server.advertise_base_url
    assert env["PICOCLAW_CHANNELS_CSGCLAW_BOT_ID"] == "u-alice"
    assert env["OPENAI_MODEL"] == "qwen2.5:7b"
    assert env["CSGCLAW_BASE_URL"] == box_base
    assert env["CSGCLAW_LLM_BASE_URL"] == f"{box_base}/api/v1/agents/u-alice/llm"
    assert env["OPENAI_API_KEY"] == alice.api_token
    assert agent_config.server.access_token not in json.dumps(record)
    assert record["spec"]["image"] == agent_config.bootstrap.manager_image
    provider = agent_config.models.providers["remote"]
    assert provider.api_key not in json.dumps(record)
    assert provider.base_url not in json.dumps(record)


@pytest.mark.django_db
def test_box_environment_of_the_2026_6_example(write_config, fake_boxes):
    # participants.md §6.2's example: base http://10.0.0.8:18080, model minimax-m2.7; the token is the
    # worker's own (security.md S2.1), not the example's shared one.
    write_config(advertise_base_url="http://10.0.0.8:18080")
    token = make_worker("u-worker-1", name="worker-1", model_id="minimax-m2.7").api_token

    provisioning.provision("u-worker-1")

    env = fake_boxes.record("worker-1")["spec"]["env"]
    llm = "http://10.0.0.8:18080/api/v1/agents/u-worker-1/llm"
    assert env == {
        "HOME": "/home/picoclaw",
        "CSGCLAW_BASE_URL": "http://10.0.0.8:18080",
        "CSGCLAW_ACCESS_TOKEN": token,
        "CSGCLAW_LLM_BASE_URL": llm,
        "OPENAI_BASE_URL": llm,
        "PICOCLAW_CUSTOM_MODEL_BASE_URL": llm,
        "CSGCLAW_LLM_API_KEY": token,
        "OPENAI_API_KEY": token,
        "PICOCLAW_CUSTOM_MODEL_API_KEY": token,
        "CSGCLAW_LLM_MODEL_ID": "minimax-m2.7",
        "OPENAI_MODEL": "minimax-m2.7",
        "PICOCLAW_AGENTS_DEFAULTS_MODEL_NAME": "minimax-m2.7",
        "PICOCLAW_CUSTOM_MODEL_NAME": "minimax-m2.7",
        "PICOCLAW_CUSTOM_MODEL_ID": "openai/minimax-m2.7",
        "PICOCLAW_CHANNELS_CSGCLAW_ENABLED": "true",
        "PICOCLAW_CHANNELS_CSGCLAW_BASE_URL": "http://10.0.0.8:18080",
        "PICOCLAW_CHANNELS_CSGCLAW_ACCESS_TOKEN": token,
        "PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID": "pt-worker-1",
        "PICOCLAW_CHANNELS_CSGCLAW_BOT_ID": "u-worker-1",
    }


@pytest.mark.django_db
def test_manager_box_gets_pt_manager_and_a_feishu_table_named_manager(agent_config, csgclaw_home, fake_boxes):
    config = load_config(csgclaw_home / "config.toml")
    config.feishu.apps = {"manager": FeishuApp(app_id="cli_m", app_secret="feishu-secret-m")}
    save_config(config)
    clear_config_cache()

    provisioning.manager_box_ensure(config=config)

    env = fake_boxes.record("manager")["spec"]["env"]
    assert env["PICOCLAW_CHANNELS_CSGCLAW_PARTICIPANT_ID"] == "pt-manager"
    assert env["PICOCLAW_CHANNELS_FEISHU_ENABLED"] == "true"
    assert (env["PICOCLAW_CHANNELS_FEISHU_APP_ID"], env["PICOCLAW_CHANNELS_FEISHU_APP_SECRET"]) == (
        "cli_m",
        "feishu-secret-m",
    )
    rendered = json.loads((csgclaw_home / "agents" / "manager" / ".picoclaw" / "config.json").read_text())
    csgclaw = rendered["channels"]["csgclaw"]
    assert (csgclaw["bot_id"], csgclaw["participant_id"]) == ("u-manager", "pt-manager")
    assert rendered["session"]["dimensions"] == ["chat", "topic"]
    assert rendered["model_list"][0]["api_base"] == f"{BOX_BASE_URL}/api/v1/agents/u-manager/llm"


@pytest.mark.django_db
def test_no_provider_key_or_base_url_in_any_variable_or_rendered_file(agent_config, csgclaw_home, fake_boxes):
    provisioning.manager_box_ensure(config=agent_config)
    make_worker()
    provisioning.provision("u-alice")

    picoclaw = csgclaw_home / "agents" / "manager" / ".picoclaw"
    texts = [json.dumps(fake_boxes.record(slug)) for slug in ("manager", "alice")]
    texts += [(picoclaw / name).read_text() for name in ("config.json", ".security.yml")]
    assert not [key for key in fake_boxes.record("alice")["spec"]["env"] if "FEISHU" in key]
    for text in texts:
        assert PROVIDER_API_KEY not in text
        assert PROVIDER_BASE_URL not in text


@pytest.mark.django_db
def test_box_spec_falls_back_to_the_default_model(fake_boxes):
    make_worker(model_id="")

    provisioning.provision("u-alice")

    assert fake_boxes.record("alice")["spec"]["env"]["OPENAI_MODEL"] == "gpt-5.4"


@pytest.mark.django_db
@pytest.mark.parametrize("operation", ["open", "create", "info"])
def test_provision_failure_marks_the_worker_failed_with_the_reason(fail_sandbox, operation):
    make_worker()
    fail_sandbox(operation)
    mark = event_mark()

    agent = provisioning.provision("u-alice")

    expected = f"create worker box: fake sandbox: {operation} failed"
    assert (agent.status, agent.status_detail) == ("failed", expected)
    assert (reload().status, reload().status_detail) == ("failed", expected)
    [updated] = events_after(mark)
    assert updated.payload["agent"]["status_detail"] == expected


@pytest.mark.django_db
def test_provision_failure_of_the_manager_names_the_bootstrap_box(fail_sandbox):
    Agent.objects.create(id=MANAGER_ID, name="manager", slug="manager", role=AgentRole.MANAGER)
    fail_sandbox("create")

    agent = provisioning.provision(MANAGER_ID)

    assert agent.status_detail == "create bootstrap manager box: fake sandbox: create failed"


@pytest.mark.django_db
def test_provision_turns_any_host_error_into_failed(csgclaw_home):
    make_worker()
    (csgclaw_home / "agents" / "alice").mkdir(parents=True)
    (csgclaw_home / "agents" / "alice" / "workspace").write_text("a file where a directory belongs")

    agent = provisioning.provision("u-alice")

    assert agent.status == AgentStatus.FAILED
    assert agent.status_detail.startswith("create worker box: ")


def set_sandbox(csgclaw_home, **values: str) -> None:
    """Rewrite [sandbox] keys of the test's config.toml."""
    config = load_config(csgclaw_home / "config.toml")
    for key, value in values.items():
        setattr(config.sandbox, key, value)
    save_config(config)
    clear_config_cache()


BUILTIN_NEEDS_LOCAL = 'builtin runtime requires [sandbox].provider = "local"'


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["boxlite-cli", "boxlite-sdk", "csghub", "docker"])
def test_builtin_runtime_under_an_image_provider_fails_provisioning(csgclaw_home, settings, provider):
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = ""
    set_sandbox(csgclaw_home, provider=provider)
    make_worker(runtime="builtin")

    agent = provisioning.provision("u-alice")

    assert (agent.status, agent.status_detail) == ("failed", f"create worker box: {BUILTIN_NEEDS_LOCAL}")


@pytest.mark.django_db
def test_builtin_setting_under_docker_fails_the_manager_with_its_own_prefix(csgclaw_home, settings):
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = ""
    set_sandbox(csgclaw_home, provider="docker", runtime="builtin")
    Agent.objects.create(id=MANAGER_ID, name="manager", slug="manager", role=AgentRole.MANAGER)

    agent = provisioning.provision(MANAGER_ID)

    assert agent.status_detail == f"create bootstrap manager box: {BUILTIN_NEEDS_LOCAL}"


@pytest.mark.django_db
def test_a_provider_class_decides_the_runtime_itself(csgclaw_home, fake_boxes):
    set_sandbox(csgclaw_home, provider="docker", runtime="builtin")
    make_worker(runtime="builtin")

    agent = provisioning.provision("u-alice")

    assert agent.status == AgentStatus.RUNNING
    assert fake_boxes.record("alice")["spec"]["labels"]["csgclaw.runtime"] == "builtin"


@pytest.mark.django_db
def test_provision_starts_an_existing_box_instead_of_creating_another(fake_boxes):
    make_worker()
    provisioning.provision("u-alice")
    fake_boxes.stop_behind_our_back("alice")

    agent = provisioning.provision("u-alice")

    assert agent.status == AgentStatus.RUNNING
    assert fake_boxes.operations("alice").count("create") == 1
    assert "start" in fake_boxes.operations("alice")


@pytest.mark.django_db
def test_provision_of_an_unknown_agent_does_nothing(fake_boxes):
    assert provisioning.provision("u-nobody") is None
    assert fake_boxes.record("nobody") is None


@pytest.mark.django_db(transaction=True)
def test_provision_removes_the_box_of_an_agent_deleted_meanwhile(monkeypatch, fake_boxes, until):
    make_worker()
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "0.5")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(agent=provisioning.provision("u-alice")))

    worker.start()
    until(lambda: (fake_boxes.runtime_home("alice")).is_dir())
    Agent.objects.filter(pk="u-alice").delete()
    worker.join(timeout=10)

    assert outcome == {"agent": None}
    assert fake_boxes.record("alice") is None
    assert fake_boxes.operations("alice") == ["create", "info", "remove"]


@pytest.mark.django_db
def test_requeue_stale_provisions_agents_left_creating(django_capture_on_commit_callbacks):
    make_worker()
    make_worker("u-bob", name="Bob", status=AgentStatus.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        requeued = provisioning.provisioning_requeue_stale()

    assert requeued == 1
    assert reload().status == AgentStatus.RUNNING
    assert reload("u-bob").box_id == ""


# --- the manager box (§8.3) -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_manager_box_ensure_creates_the_box_and_renders_the_manager_files(
    agent_config, csgclaw_home, fake_boxes
):
    manager = provisioning.manager_box_ensure(config=agent_config)

    assert (manager.id, manager.status, manager.box_id) == (MANAGER_ID, "running", "fake-manager")
    assert fake_boxes.operations("manager") == ["create", "info"]
    picoclaw = csgclaw_home / "agents" / "manager" / ".picoclaw"
    rendered = (picoclaw / "config.json").read_text() + (picoclaw / ".security.yml").read_text()
    assert manager.api_token in rendered
    assert agent_config.server.access_token not in rendered
    assert agent_config.models.providers["remote"].api_key not in rendered
    assert (csgclaw_home / "agents" / "manager" / "workspace" / "AGENTS.md").is_file()


@pytest.mark.django_db
def test_manager_box_ensure_reuses_the_box_on_a_second_run(agent_config, fake_boxes):
    provisioning.manager_box_ensure(config=agent_config)
    created_at = fake_boxes.record("manager")["created_at"]
    mark = event_mark()

    manager = provisioning.manager_box_ensure(config=agent_config)

    assert manager.status == AgentStatus.RUNNING
    assert fake_boxes.operations("manager").count("create") == 1
    assert fake_boxes.record("manager")["created_at"] == created_at
    assert [event.payload["agent"]["status"] for event in events_after(mark)] == ["creating", "running"]


@pytest.mark.django_db
def test_manager_box_ensure_starts_a_stopped_box_and_never_recreates_it(agent_config, fake_boxes):
    provisioning.manager_box_ensure(config=agent_config)
    fake_boxes.stop_behind_our_back("manager")

    manager = provisioning.manager_box_ensure(config=agent_config)

    assert manager.status == AgentStatus.RUNNING
    assert fake_boxes.operations("manager").count("create") == 1
    assert fake_boxes.operations("manager")[-2:] == ["start", "info"]


@pytest.mark.django_db
def test_manager_box_ensure_with_force_wipes_the_manager_directory_and_recreates(
    agent_config, csgclaw_home, fake_boxes
):
    provisioning.manager_box_ensure(config=agent_config)
    created_at = fake_boxes.record("manager")["created_at"]
    leftover = csgclaw_home / "agents" / "manager" / "workspace" / "notes.md"
    leftover.write_text("from the old box")
    (csgclaw_home / "projects" / "shared.md").write_text("team file")

    manager = provisioning.manager_box_ensure(config=agent_config, force=True)

    assert (manager.status, manager.box_id) == ("running", "fake-manager")
    assert not leftover.exists()
    assert (csgclaw_home / "projects" / "shared.md").exists()
    # The old operation log lived in the wiped directory: what is left is the new box's history.
    assert fake_boxes.operations("manager") == ["create", "info"]
    assert fake_boxes.record("manager")["created_at"] != created_at


@pytest.mark.django_db
def test_manager_box_ensure_failure_leaves_the_manager_failed(agent_config, fail_sandbox):
    fail_sandbox("create")

    manager = provisioning.manager_box_ensure(config=agent_config)

    assert (manager.status, manager.status_detail) == (
        "failed",
        "create bootstrap manager box: fake sandbox: create failed",
    )


@pytest.mark.django_db
def test_manager_box_ensure_force_reports_a_failed_removal(agent_config, csgclaw_home, fail_sandbox):
    provisioning.manager_box_ensure(config=agent_config)
    fail_sandbox("remove")

    manager = provisioning.manager_box_ensure(config=agent_config, force=True)

    assert (manager.status, manager.status_detail) == (
        "failed",
        'create bootstrap manager box: force remove bootstrap manager box "manager" ("fake-manager"): '
        "fake sandbox: remove failed",
    )
    assert (csgclaw_home / "agents" / "manager" / "workspace").is_dir()


@pytest.mark.django_db(transaction=True)
def test_manager_box_ensure_reports_progress_while_the_box_is_made(agent_config, monkeypatch):
    monkeypatch.setattr(provisioning, "PROGRESS_INTERVAL_SECONDS", 0.05)
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "0.5")
    reported: list[float] = []

    manager = provisioning.manager_box_ensure(config=agent_config, progress=reported.append)

    assert manager.status == AgentStatus.RUNNING
    assert len(reported) >= 3
    assert reported == sorted(reported)
