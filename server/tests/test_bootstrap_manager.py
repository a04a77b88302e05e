"""`manage.py bootstrap_manager` (config-and-commands.md §12): config checks, output, reuse, --force."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from agents.lifecycle import provisioning
from agents.models import Agent, Bot, BotChannel
from core.config import clear_config_cache, save_config
from im.identity import ADMIN_ID, MANAGER_ID
from im.models import ChatUser
from im.selectors import direct_room_between
from server.management.commands import bootstrap_manager

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("agent_config")]

MANAGER_RUNNING = 'manager agent "u-manager": running (box fake-manager)'
SERVES_NOTHING = (
    "this command serves nothing: start the server with `python manage.py runserver` (or `make run`) "
    "and open {url}/"
)
MANAGE_PY = Path(django_settings.BASE_DIR) / "manage.py"


def bootstrap(*args: str) -> tuple[str, str, int]:
    """Run the command in-process: (stdout, stderr, exit status)."""
    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("bootstrap_manager", *args, stdout=stdout, stderr=stderr)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return stdout.getvalue(), stderr.getvalue(), status


# The box is made on the provisioning pool, whose threads only see committed rows.
@pytest.mark.django_db(transaction=True)
def test_first_run_prints_the_effective_config_and_creates_the_manager_box(agent_config, fake_boxes):
    stdout, stderr, status = bootstrap()

    assert (status, stderr) == (0, "")
    lines = stdout.splitlines()
    assert lines[0] == "effective config:"
    assert 'access_token = "sh********en"' in lines
    assert f'api_key = "sk{"*" * 20}a9"' in lines
    assert agent_config.models.providers["remote"].api_key not in stdout
    assert lines[-2:] == [MANAGER_RUNNING, SERVES_NOTHING.format(url="http://box-host.test:18080")]
    assert "CSGClaw IM is available at" not in stdout
    assert fake_boxes.operations("manager") == ["create", "info"]
    assert Agent.objects.get(pk=MANAGER_ID).status == "running"
    assert Bot.objects.filter(channel=BotChannel.CSGCLAW, bot_id=MANAGER_ID, agent_id=MANAGER_ID).exists()
    assert ChatUser.objects.filter(pk__in=[ADMIN_ID, MANAGER_ID]).count() == 2
    assert direct_room_between(ADMIN_ID, MANAGER_ID) is not None


@pytest.mark.django_db(transaction=True)
def test_second_run_reuses_the_box(fake_boxes):
    bootstrap()
    created_at = fake_boxes.record("manager")["created_at"]

    stdout, _, status = bootstrap()

    assert status == 0
    assert stdout.splitlines()[-2] == MANAGER_RUNNING
    assert fake_boxes.operations("manager").count("create") == 1
    assert fake_boxes.record("manager")["created_at"] == created_at


@pytest.mark.django_db(transaction=True)
def test_force_recreates_the_box_and_wipes_the_manager_directory(csgclaw_home, fake_boxes):
    bootstrap()
    created_at = fake_boxes.record("manager")["created_at"]
    leftover = csgclaw_home / "agents" / "manager" / "workspace" / "notes.md"
    leftover.write_text("from the old box")

    stdout, _, status = bootstrap("--force")

    assert status == 0
    assert stdout.splitlines()[-2] == MANAGER_RUNNING
    assert not leftover.exists()
    assert fake_boxes.operations("manager") == ["create", "info"]
    assert fake_boxes.record("manager")["created_at"] != created_at


@pytest.mark.django_db(transaction=True)
def test_a_box_failure_is_reported_on_stderr_with_exit_status_1(fail_sandbox):
    fail_sandbox("create")

    stdout, stderr, status = bootstrap()

    assert status == 1
    assert stdout.splitlines()[-1] == 'manager agent "u-manager": failed'
    assert stderr == "manager box is not ready: create bootstrap manager box: fake sandbox: create failed\n"


@pytest.mark.django_db(transaction=True)
def test_progress_is_reported_while_the_box_is_made(monkeypatch):
    monkeypatch.setattr(provisioning, "PROGRESS_INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(bootstrap_manager, "PROGRESS_INTERVAL_SECONDS", 0.1)
    monkeypatch.setenv("CSGCLAW_FAKE_SANDBOX_DELAY", "0.6")

    stdout, stderr, status = bootstrap()

    assert status == 0
    assert stdout.splitlines()[-2] == MANAGER_RUNNING
    assert stderr.startswith("waiting for manager box (")


@pytest.mark.django_db
def test_a_missing_config_is_an_error(csgclaw_home):
    (csgclaw_home / "config.toml").unlink()
    clear_config_cache()

    stdout, stderr, status = bootstrap()

    assert (stdout, status) == ("", 1)
    assert (
        stderr
        == f"config not found at {csgclaw_home / 'config.toml'}; run `python manage.py onboard` first\n"
    )
    assert not Agent.objects.exists()


@pytest.mark.django_db
def test_an_incomplete_models_config_is_an_error(write_config):
    write_config(providers={}, default="")

    stdout, stderr, status = bootstrap()

    assert (stdout, status) == ("", 1)
    assert stderr.startswith("models config is incomplete (--base-url, --api-key, --models); run ")
    assert not Agent.objects.exists()


def test_the_real_command_exits_1_on_failure_and_0_once_the_box_is_made(tmp_path, agent_config):
    """A separate process on its own database, as an operator would run it."""
    home = tmp_path / "operator-home"
    home.mkdir()
    save_config(agent_config, home / "config.toml")
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="csgclaw_site.settings",
        CSGCLAW_HOME=str(home),
        CSGCLAW_CONFIG=str(home / "config.toml"),
        CSGCLAW_SANDBOX_PROVIDER_CLASS="sandbox.providers.fake.FakeProvider",
        CSGCLAW_FAKE_SANDBOX_FAIL="create",
    )

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(MANAGE_PY), "bootstrap_manager"],
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
        )

    failed = run()
    env["CSGCLAW_FAKE_SANDBOX_FAIL"] = ""
    succeeded = run()

    assert failed.returncode == 1
    assert (
        "manager box is not ready: create bootstrap manager box: fake sandbox: create failed"
        in failed.stderr.splitlines()
    )
    assert succeeded.returncode == 0, succeeded.stderr
    assert succeeded.stdout.splitlines()[-2] == MANAGER_RUNNING
