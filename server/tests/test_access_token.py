"""The server token (security.md S1.1, S1.2): onboard generates one; a placeholder config warns at start."""

from __future__ import annotations

import io
import json
import logging
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from django.core.management import call_command

from core.config import ServerConfig, clear_config_cache, default_config
from csgclaw_site.testing.live import REPO_ROOT, live_env, manage_py
from server import startup
from server.tests.test_runserver import LIVE_TIMEOUT, free_port, start_server  # noqa: F401 (a fixture)

PLACEHOLDER = "your_access_token"
# The exact text of S1.2, spelled out here rather than imported so a change to it fails a test.
WARNING = "; ".join(
    (
        "[server].access_token is the public placeholder",
        "bot routes accept only agents' own tokens until you set one",
    )
)
MODEL_FLAGS = ("--base-url", "https://llm.example.test/v1", "--api-key", "k", "--models", "m")


@pytest.fixture
def config_file(settings, tmp_path: Path) -> Path:
    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    clear_config_cache()
    yield tmp_path / "config.toml"
    clear_config_cache()


def onboard(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    # A named sandbox: detection would print this machine's findings around the lines checked here.
    call_command(
        "onboard",
        *MODEL_FLAGS,
        "--sandbox-provider",
        "local",
        "--skip-manager-box",
        *args,
        stdout=stdout,
        stderr=stderr,
    )
    return stdout.getvalue(), stderr.getvalue()


def written_token(config_file: Path) -> str:
    return tomllib.loads(config_file.read_text())["server"]["access_token"]


def notice(token: str, config_file: Path) -> str:
    return f"access token: {token[:4]}…{token[-4:]} (full value in {config_file})"


@pytest.mark.django_db
def test_a_first_onboard_writes_a_random_token_and_shows_only_its_ends(config_file):
    stdout, _ = onboard()

    token = written_token(config_file)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert stdout.splitlines()[1] == notice(token, config_file)
    assert token not in stdout


@pytest.mark.django_db
def test_two_first_onboards_get_different_tokens(config_file, tmp_path):
    onboard()
    first = written_token(config_file)
    config_file.unlink()
    clear_config_cache()
    onboard()

    assert written_token(config_file) != first


@pytest.mark.django_db
def test_a_rerun_keeps_the_token_and_prints_no_notice(config_file):
    onboard()
    token = written_token(config_file)

    stdout, stderr = onboard()

    assert written_token(config_file) == token
    assert "access token" not in stdout + stderr


@pytest.mark.django_db
@pytest.mark.parametrize("written", [PLACEHOLDER, "", f"  {PLACEHOLDER} "])
def test_a_placeholder_or_empty_token_in_the_file_is_replaced(config_file, written):
    config_file.write_text(f'# my notes\n[server]\naccess_token = "{written}"\n')

    stdout, _ = onboard()

    token = written_token(config_file)
    assert token not in (PLACEHOLDER, "")
    assert notice(token, config_file) in stdout
    assert config_file.read_text().startswith("# my notes\n")


@pytest.mark.django_db
def test_a_file_without_an_access_token_gets_one(config_file):
    config_file.write_text('[server]\nlisten_addr = "127.0.0.1:18080"\n')

    onboard()

    assert len(written_token(config_file)) == 43


@pytest.mark.django_db
def test_a_configured_token_is_kept(config_file):
    config_file.write_text('[server]\naccess_token = "my-own-token"\n')

    stdout, _ = onboard()

    assert written_token(config_file) == "my-own-token"
    assert "access token" not in stdout


@pytest.mark.django_db
def test_an_environment_reference_is_the_users_choice_even_while_unset(config_file, monkeypatch):
    monkeypatch.delenv("MY_TOKEN", raising=False)
    config_file.write_text('[server]\naccess_token = "${MY_TOKEN}"\n')

    onboard()

    assert written_token(config_file) == "${MY_TOKEN}"


@pytest.mark.django_db
@pytest.mark.parametrize("given", ["tok-given-123", PLACEHOLDER])
def test_an_explicit_access_token_is_written_as_given(config_file, given):
    stdout, _ = onboard("--access-token", given)

    assert written_token(config_file) == given
    assert "access token" not in stdout


@pytest.mark.django_db
def test_json_output_stays_one_document_and_the_notice_goes_to_stderr(config_file):
    stdout, stderr = onboard("--output", "json")

    assert json.loads(stdout)["status"] == "initialized"
    assert stderr == notice(written_token(config_file), config_file) + "\n"


@pytest.mark.timeout(180)
def test_the_first_run_onboarding_of_make_run_writes_a_random_token(tmp_path):
    # The exact flags `make run` passes on a machine without a config (Makefile EXAMPLE_PROVIDER_FLAGS).
    makefile = (REPO_ROOT / "Makefile").read_text()
    flags_text = re.search(r"^EXAMPLE_PROVIDER_FLAGS := ((?:.*\\\n)*.*)$", makefile, re.M).group(1)
    flags = shlex.split(flags_text.replace("\\\n", " "))
    home = tmp_path / "home"
    home.mkdir()

    result = manage_py(live_env(home), "onboard", "--no-input", *flags)

    token = written_token(home / "config.toml")
    assert len(token) == 43
    assert notice(token, home / "config.toml") in result.stdout
    assert "manager box: running" in result.stdout


# --- the start-up warning (S1.2) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "warned"),
    [
        (ServerConfig(access_token=PLACEHOLDER), True),
        (ServerConfig(access_token="real-token"), False),
        (ServerConfig(access_token=PLACEHOLDER, no_auth=True), False),
    ],
)
def test_the_placeholder_warning(caplog, server, warned):
    config = default_config()
    config.server = server
    caplog.set_level(logging.WARNING, logger="csgclaw.server")

    startup.placeholder_token_warn(config)

    assert [record.getMessage() for record in caplog.records] == ([WARNING] if warned else [])


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
@pytest.mark.parametrize("command", [("serve",), ("runserver", "--noreload")])
def test_a_server_with_the_placeholder_warns_once_at_start(start_server, command):  # noqa: F811
    port = free_port()
    config = f'[server]\naccess_token = "{PLACEHOLDER}"\n'
    placeholder = start_server(*command, str(port), "--no-bootstrap", config=config)
    placeholder.wait_healthy(port)
    assert placeholder.stderr.count(f"WARNING csgclaw.server: {WARNING}\n") == 1
    assert placeholder.stop() == 0

    port = free_port()
    own = start_server(*command, str(port), "--no-bootstrap", config='[server]\naccess_token = "tok-own"\n')
    own.wait_healthy(port)
    assert WARNING not in own.stderr
    assert own.stop() == 0
