"""`manage.py runserver` and `serve` (config-and-commands §10, §11) and the start-up bootstrap (§10.1)."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, AgentStatus, Bot
from core.config import clear_config_cache, mask_secret
from csgclaw_site.testing.live import PYTHON, REPO_ROOT, free_port, live_env
from im import events
from im.identity import MANAGER_ID
from im.models import ChatUser, Event
from server import startup

STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0
LIVE_TIMEOUT = 120
CSGHUB_LITE_ADVICE = "start it with `csghub-lite run <model>` or `csghub-lite serve`, then retry"
DEFAULT_TOKEN_MASKED = mask_secret("your_access_token")


def config_text(*, listen_addr: str, csghub_lite_base: str, api_key: str = "sk-secret-key") -> str:
    return f"""\
[server]
listen_addr = "{listen_addr}"
access_token = "${{MY_TOKEN}}"

[models]
default = "csghub-lite.m1"

[models.providers.csghub-lite]
base_url = "{csghub_lite_base}"
api_key = "{api_key}"
models = ["m1"]
"""


# --- live servers --------------------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """`manage.py runserver|serve …` in a subprocess, stdout and stderr kept apart in files."""

    process: subprocess.Popen[bytes]
    home: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} (exit code {self.process.returncode})\n{self.describe()}", pytrace=False)
            time.sleep(0.1)

    def wait_healthy(self, port: int) -> None:
        def healthy() -> bool:
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0, trust_env=False).text == "ok"
                )
            except httpx.TransportError:
                return False

        self.wait_until(healthy, f"no `ok` from GET /healthz on port {port}")

    def wait_for_stderr(self, text: str) -> None:
        self.wait_until(lambda: text in self.stderr, f"{text!r} never appeared on stderr")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(STOP_SECONDS)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(
        *args: str, config: str | None = None, extra_env: dict[str, str] | None = None
    ) -> ServerProcess:
        home = tmp_path / f"home-{len(started)}"
        home.mkdir()
        if config is not None:
            (home / "config.toml").write_text(config)
        env = live_env(home, {"CSGCLAW_BOOTSTRAP_ON_START": "true", **(extra_env or {})})
        stdout_path, stderr_path = home / "server.out", home / "server.err"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [PYTHON, "manage.py", *args],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        started.append(ServerProcess(process, home, stdout_path, stderr_path))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        print(server.describe())  # shown by pytest only when the test failed


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0, trust_env=False)


def row_count(home: Path, table: str) -> int:
    """Rows in a table of the server's SQLite database (0 while it does not exist yet)."""
    try:
        with sqlite3.connect(home / "csgclaw.sqlite3") as connection:
            return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_runserver_binds_the_configured_listen_addr_and_masks_secrets(start_server):
    port, closed_port = free_port(), free_port()
    csghub_lite_base = f"http://127.0.0.1:{closed_port}/v1"
    server = start_server(
        "runserver",
        "--noreload",
        config=config_text(listen_addr=f"127.0.0.1:{port}", csghub_lite_base=csghub_lite_base),
        extra_env={"MY_TOKEN": "tok-abcdef-123"},
    )

    server.wait_healthy(port)
    assert get(port, "/static/admin/css/base.css").status_code == 200
    stdout = server.stdout
    assert "effective config:\n[server]\n" in stdout
    assert f'listen_addr = "127.0.0.1:{port}"' in stdout
    assert f'access_token = "{mask_secret("tok-abcdef-123")}"' in stdout
    assert f'api_key = "{mask_secret("sk-secret-key")}"' in stdout
    assert f"CSGClaw IM is available at: http://127.0.0.1:{port}/\n" in stdout
    # The model provider is down: the server still serves, and the bootstrap says why models will fail.
    server.wait_for_stderr(
        f"WARNING csgclaw.bootstrap: csghub-lite provider is not reachable at {csghub_lite_base} ("
    )
    assert CSGHUB_LITE_ADVICE in server.stderr
    server.wait_until(lambda: row_count(server.home, "agents_agent") == 1, "the bootstrap made no manager")
    assert server.stop() == 0
    for secret in ("tok-abcdef-123", "sk-secret-key", "${MY_TOKEN}"):
        assert secret not in server.stdout + server.stderr


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_runserver_starts_without_a_config(start_server):
    port = free_port()
    server = start_server("runserver", f"127.0.0.1:{port}", "--noreload")

    server.wait_healthy(port)
    assert get(port, "/static/admin/css/base.css").status_code == 200
    assert f'access_token = "{DEFAULT_TOKEN_MASKED}"' in server.stdout
    assert f"CSGClaw IM is available at: http://127.0.0.1:{port}/\n" in server.stdout
    config_path = server.home / "config.toml"
    assert f"WARNING csgclaw.server: config not found at {config_path}" in server.stderr
    server.wait_for_stderr(f"WARNING csgclaw.bootstrap: load config: config not found at {config_path}")
    assert row_count(server.home, "im_user") == 2
    assert row_count(server.home, "agents_agent") == 0
    assert server.stop() == 0


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_serve_uses_addrport_serves_static_files_and_stops_on_sigterm(start_server):
    port = free_port()
    server = start_server(
        "serve",
        f"127.0.0.1:{port}",
        config=config_text(listen_addr="127.0.0.1:1", csghub_lite_base="http://llm.example.test/v1"),
        extra_env={"MY_TOKEN": "tok-abcdef-123"},
    )

    server.wait_healthy(port)
    assert get(port, "/static/admin/css/base.css").status_code == 200
    assert get(port, "/static/admin/no-such-file.css").status_code == 404
    assert "effective config:\n[server]\n" in server.stdout
    assert f'access_token = "{mask_secret("tok-abcdef-123")}"' in server.stdout
    assert f"CSGClaw IM is available at: http://127.0.0.1:{port}/\n" in server.stdout

    assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.stderr


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
def test_serve_without_config_keeps_the_default_host_for_a_bare_port(start_server):
    port = free_port()
    server = start_server("serve", str(port), "--no-bootstrap")

    server.wait_healthy(port)
    assert f"CSGClaw IM is available at: http://127.0.0.1:{port}/\n" in server.stdout
    assert "config not found at" in server.stderr
    # Migrations ran before serving (their post_migrate handler seeds the IM).
    assert row_count(server.home, "im_user") == 2
    assert server.stop(signal.SIGINT) == 0
    assert "csgclaw.bootstrap" not in server.stderr


BAD_PORT = "the port must be a number from 1 to 65535"


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
@pytest.mark.parametrize("command", ["runserver", "serve"])
@pytest.mark.parametrize("addrport", ["127.0.0.1:99999", "localhost:0"])
def test_an_unbindable_addrport_fails_in_one_line_before_migrating(start_server, command, addrport):
    server = start_server(command, addrport)

    assert server.process.wait(STARTUP_SECONDS) == 1
    assert server.stderr == f'CommandError: invalid listen address "{addrport}": {BAD_PORT}\n'
    assert server.stdout == ""
    assert row_count(server.home, "django_migrations") == 0


@pytest.mark.live
@pytest.mark.timeout(LIVE_TIMEOUT)
@pytest.mark.parametrize("command", [("serve",), ("runserver", "--noreload")])
def test_a_bad_listen_addr_in_the_config_is_a_warning_and_the_defaults_are_served(start_server, command):
    port = free_port()
    server = start_server(
        *command,
        str(port),
        "--no-bootstrap",
        config=config_text(listen_addr="127.0.0.1:abc", csghub_lite_base="http://llm.example.test/v1"),
    )

    server.wait_healthy(port)
    assert (
        'WARNING csgclaw.server: parse server.listen_addr: invalid listen address "127.0.0.1:abc": '
        f"{BAD_PORT}; serving with the default configuration\n"
    ) in server.stderr
    assert 'listen_addr = "0.0.0.0:18080"' in server.stdout
    assert server.stop() == 0
    assert "Traceback" not in server.stderr


def test_a_bad_listen_addr_in_the_config_falls_back_to_the_default_one(config_file: Path):
    config_file.write_text('[server]\nlisten_addr = "127.0.0.1:99999"\n')

    config, config_error = startup.serving_config()

    assert str(config_error) == (
        f'parse server.listen_addr: invalid listen address "127.0.0.1:99999": {BAD_PORT}'
    )
    assert startup.serving_listen_addr(config, None) == "0.0.0.0:18080"


def test_an_unbindable_addrport_is_a_command_error(config_file: Path):
    config, _ = startup.serving_config()

    with pytest.raises(CommandError) as info:
        startup.serving_listen_addr(config, "127.0.0.1:8080x")

    assert str(info.value) == f'invalid listen address "127.0.0.1:8080x": {BAD_PORT}'


# --- the start-up bootstrap, in-process ----------------------------------------------------------------


@dataclass
class FakeLifecycle:
    box_status: str = AgentStatus.RUNNING
    box_detail: str = ""
    box_calls: int = 0
    requeue_calls: int = 0
    requeue_error: Exception | None = None
    seen: list[str] = field(default_factory=list)

    def manager_box_ensure(self, *, config, force=False, progress=None) -> Agent:
        self.box_calls += 1
        Agent.objects.filter(pk=MANAGER_ID).update(status=self.box_status, status_detail=self.box_detail)
        return Agent.objects.get(pk=MANAGER_ID)

    def provisioning_requeue_stale(self) -> int:
        self.requeue_calls += 1
        if self.requeue_error is not None:
            raise self.requeue_error
        return 0


@pytest.fixture
def lifecycle(monkeypatch) -> FakeLifecycle:
    fake = FakeLifecycle()
    monkeypatch.setattr("agents.lifecycle.manager_box_ensure", fake.manager_box_ensure)
    monkeypatch.setattr("agents.lifecycle.provisioning_requeue_stale", fake.provisioning_requeue_stale)
    return fake


@pytest.fixture
def config_file(settings, tmp_path: Path) -> Iterator[Path]:
    settings.CSGCLAW_HOME = tmp_path
    settings.CSGCLAW_CONFIG = tmp_path / "config.toml"
    clear_config_cache()
    yield tmp_path / "config.toml"
    clear_config_cache()


@pytest.fixture
def bootstrap(caplog) -> Callable[[], list[str]]:
    """Run the bootstrap on its daemon thread as the server does; returns its warnings."""

    def run() -> list[str]:
        caplog.set_level(logging.WARNING, logger="csgclaw.bootstrap")
        thread = startup.bootstrap_start()
        thread.join(30)
        assert not thread.is_alive()
        return [record.getMessage() for record in caplog.records if record.name == "csgclaw.bootstrap"]

    return run


VALID_CONFIG = """\
[models]
default = "remote.m1"

[models.providers.remote]
base_url = "http://llm.test/v1"
api_key = "sk-remote"
models = ["m1"]
"""


@pytest.mark.django_db(transaction=True)
def test_bootstrap_ensures_seed_manager_bot_and_box(config_file: Path, lifecycle: FakeLifecycle, bootstrap):
    config_file.write_text(VALID_CONFIG)

    assert bootstrap() == []

    assert ChatUser.objects.count() == 2
    manager = Agent.objects.get()
    assert (manager.id, manager.profile, manager.status) == (MANAGER_ID, "remote.m1", AgentStatus.RUNNING)
    assert Bot.objects.filter(bot_id=MANAGER_ID, agent_id=MANAGER_ID).count() == 1
    assert (lifecycle.requeue_calls, lifecycle.box_calls) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_restart_keeps_the_name_the_manager_bot_was_created_with(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap, client
):
    """http-api.md §2.5: the manager bot's name is the one given at creation, not reset at every start."""
    config_file.write_text(VALID_CONFIG)
    bootstrap()
    response = client.post(
        "/api/v1/bots", {"name": "Boss", "role": "manager"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content

    assert bootstrap() == []

    assert [(bot["id"], bot["name"]) for bot in client.get("/api/v1/bots").json()] == [(MANAGER_ID, "Boss")]


@pytest.mark.django_db(transaction=True)
def test_bootstrap_without_config_warns_and_skips_the_manager(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap
):
    warnings = bootstrap()

    assert warnings == [
        f"load config: config not found at {config_file}; run `python manage.py onboard` first"
    ]
    assert ChatUser.objects.count() == 2
    assert lifecycle.requeue_calls == 1
    assert (Agent.objects.count(), lifecycle.box_calls) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_each_step_logs_its_own_error_and_the_rest_still_run(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap, monkeypatch
):
    config_file.write_text(VALID_CONFIG)

    def broken_seed() -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("im.services.seed_ensure", broken_seed)
    lifecycle.requeue_error = RuntimeError("worker pool is shut down")

    assert bootstrap() == ["ensure IM seed: disk full", "requeue provisioning: worker pool is shut down"]
    assert Agent.objects.get().id == MANAGER_ID
    assert lifecycle.box_calls == 1


@pytest.mark.parametrize(
    ("provider", "base_url"),
    [("csghub-lite", "http://127.0.0.1:11435/v1"), ("local-llm", "http://localhost:11435/v1")],
)
@pytest.mark.django_db(transaction=True)
def test_bootstrap_warns_when_csghub_lite_is_unreachable(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap, respx_mock, provider, base_url
):
    config_file.write_text(
        f'[models]\ndefault = "{provider}.m1"\n\n[models.providers.{provider}]\n'
        f'base_url = "{base_url}"\napi_key = "local"\nmodels = ["m1"]\n'
    )
    respx_mock.get(f"{base_url}/models").respond(503)

    assert bootstrap() == [
        f"csghub-lite provider is not reachable at {base_url} "
        f"(request models from {base_url}: status 503); {CSGHUB_LITE_ADVICE}"
    ]
    assert lifecycle.box_calls == 1


@pytest.mark.django_db(transaction=True)
def test_bootstrap_is_quiet_when_csghub_lite_answers(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap, respx_mock
):
    config_file.write_text(
        '[models]\ndefault = "csghub-lite.m1"\n\n[models.providers.csghub-lite]\n'
        'base_url = "http://127.0.0.1:11435/v1"\napi_key = "local"\nmodels = ["m1"]\n'
    )
    route = respx_mock.get("http://127.0.0.1:11435/v1/models").respond(json={"data": [{"id": "m1"}]})

    assert bootstrap() == []
    assert route.called


@pytest.mark.django_db(transaction=True)
def test_bootstrap_warns_about_incomplete_models_and_a_failed_box(
    config_file: Path, lifecycle: FakeLifecycle, bootstrap
):
    config_file.write_text('[models.providers.remote]\nbase_url = "http://llm.test/v1"\nmodels = ["m1"]\n')
    lifecycle.box_status, lifecycle.box_detail = AgentStatus.FAILED, "pull image: denied"

    assert bootstrap() == [
        "models config is incomplete (--api-key); run `python manage.py onboard --provider csghub-lite "
        "--models <model>` or `python manage.py onboard --base-url <url> --api-key <key> "
        "--models <model[,model...]> [--reasoning-effort <effort>]`",
        "manager box is not ready: pull image: denied",
    ]


@pytest.mark.django_db(transaction=True)
def test_bootstrap_hints_at_the_local_provider_when_the_sandbox_runtime_is_missing(
    config_file: Path, bootstrap, settings
):
    settings.CSGCLAW_SANDBOX_PROVIDER_CLASS = ""
    sandbox = '[sandbox]\nprovider = "docker"\ndocker_path = "/nonexistent/docker"\n'
    config_file.write_text(VALID_CONFIG + sandbox)

    assert bootstrap() == [
        "manager box is not ready: create bootstrap manager box: docker: executable "
        '"/nonexistent/docker" not found; install docker or set [sandbox].docker_path\n'
        'hint: run "manage.py onboard --sandbox-provider local" to use the built-in agent runtime'
    ]


@pytest.mark.django_db(transaction=True)
def test_bootstrap_prunes_expired_events(config_file: Path, lifecycle: FakeLifecycle, bootstrap, settings):
    settings.CSGCLAW_EVENT_RETENTION_DAYS = 7
    with transaction.atomic():
        expired = events.event_append(type=events.USER_CREATED, payload={"user": {"id": "u-old"}})
        recent = events.event_append(type=events.USER_CREATED, payload={"user": {"id": "u-new"}})
    Event.objects.filter(pk=expired.seq).update(created_at=timezone.now() - timedelta(days=8))

    bootstrap()

    assert not Event.objects.filter(pk=expired.seq).exists()
    assert Event.objects.filter(pk=recent.seq).exists()
