"""onboard's sandbox step and its run summary: detection applied or not, and what it says about it."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from core.config import clear_config_cache
from csgclaw_site.testing.live import MANAGE_SECONDS, PYTHON, REPO_ROOT, live_env
from sandbox.detect import Detection
from server.tests.test_onboard import REMOTE_CONFIG

pytestmark = pytest.mark.timeout(30)

MODEL_FLAGS = ("--base-url", "u", "--api-key", "k", "--models", "m", "--skip-manager-box")
LOCAL_FOUND = Detection(
    "local", ["Docker: absent", "bubblewrap: absent"], local_isolation="none", warning="WARNING: no isolation"
)


@pytest.fixture
def config_file(settings, tmp_path: Path) -> Path:
    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    clear_config_cache()
    return tmp_path / "config.toml"


@pytest.fixture
def detections(monkeypatch) -> list[Detection]:
    """Every detection onboard runs; each returns LOCAL_FOUND."""
    calls: list[Detection] = []

    def fake(probes=None) -> Detection:
        calls.append(LOCAL_FOUND)
        return LOCAL_FOUND

    monkeypatch.setattr("sandbox.detect.sandbox_detect", fake)
    return calls


def onboard(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("onboard", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.mark.django_db
def test_a_new_config_gets_the_detected_provider_and_says_why(config_file: Path, detections):
    stdout, _ = onboard(*MODEL_FLAGS)

    assert len(detections) == 1
    assert stdout.startswith(LOCAL_FOUND.report + "\n")
    assert "  Docker: absent\n  bubblewrap: absent\n  → local\nWARNING: no isolation\n" in stdout
    lines = config_file.read_text().splitlines()
    assert 'provider = "local"' in lines
    assert 'local_isolation = "none"' in lines
    assert f"initialized config at {config_file}" in stdout.splitlines()


@pytest.mark.django_db
def test_json_output_keeps_the_findings_off_stdout(config_file: Path, detections):
    stdout, stderr = onboard(*MODEL_FLAGS, "--output", "json")

    assert json.loads(stdout)["message"] == f"initialized config at {config_file}"
    assert stderr.startswith(LOCAL_FOUND.report + "\n")


@pytest.mark.django_db
def test_a_provider_named_in_config_toml_is_never_detected_again(config_file: Path, detections, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "t")
    monkeypatch.setenv("MY_KEY", "k")
    config_file.write_text(REMOTE_CONFIG)

    stdout, _ = onboard("--no-input", "--skip-manager-box")

    assert detections == []
    assert config_file.read_text() == REMOTE_CONFIG
    assert stdout.splitlines()[:2] == [
        f"sandbox: docker (set in {config_file}; not detected again)",
        f"updated config at {config_file}",
    ]


@pytest.mark.django_db
def test_an_existing_config_without_a_provider_gets_one_detected(config_file: Path, detections):
    config_file.write_text('[server]\nlisten_addr = "127.0.0.1:18080"\n')

    stdout, _ = onboard(*MODEL_FLAGS)

    assert len(detections) == 1
    assert 'provider = "local"' in config_file.read_text().splitlines()
    assert f"updated config at {config_file}" in stdout.splitlines()


@pytest.mark.django_db
def test_the_flag_wins_without_detecting(config_file: Path, detections):
    stdout, _ = onboard(*MODEL_FLAGS, "--sandbox-provider", "docker")

    assert detections == []
    assert stdout.splitlines()[0] == f"initialized config at {config_file}"
    assert 'provider = "docker"' in config_file.read_text().splitlines()


@pytest.mark.django_db
def test_choosing_custom_over_csghub_lite_saves_its_own_provider(config_file: Path, detections):
    config_file.write_text(
        '[models]\ndefault = "csghub-lite.q"\n'
        '[models.providers.csghub-lite]\nbase_url = "http://127.0.0.1:11435/v1"\napi_key = "local"\n'
        'models = ["q"]\n'
    )

    onboard(
        "--provider", "custom", "--base-url", "https://llm.example.test/v1", "--api-key", "sk",
        "--models", "g", "--skip-manager-box",
    )  # fmt: skip

    text = config_file.read_text()
    assert 'default = "default.g"' in text
    assert (
        '[models.providers.csghub-lite]\nbase_url = "http://127.0.0.1:11435/v1"\napi_key = "local"\n' in text
    )
    assert '[models.providers.default]\nbase_url = "https://llm.example.test/v1"\napi_key = "sk"\n' in text

    # Without --provider the flags still edit the current default's provider, whatever its name.
    onboard("--models", "g2", "--skip-manager-box")
    assert 'default = "default.g2"' in config_file.read_text()


@pytest.mark.live
@pytest.mark.timeout(MANAGE_SECONDS)
@pytest.mark.parametrize("argv", [("onboard", "--help"), ("help", "onboard"), ("bootstrap_manager", "-h")])
def test_help_writes_nothing(tmp_path: Path, argv):
    home = tmp_path / "state"
    env = live_env(home)
    env.pop("DJANGO_SECRET_KEY")

    result = subprocess.run(
        [PYTHON, "manage.py", *argv], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "usage: manage.py" in result.stdout
    assert not home.exists()
