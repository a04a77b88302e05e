"""A live team for runtime tests: `manage.py runserver` with the local provider and the built-in runtime.

The server is started the way a user starts it (runserver, start-up bootstrap, real `local` provider); the
model provider is a `ScriptedOpenAI` on loopback. Runtime processes outlive the server on purpose (the local
provider's contract), so `stop()` kills every process group recorded in a `local-box.json` of the home.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bots.tests.scripted_openai import ScriptedOpenAI
from csgclaw_site.testing.live import PYTHON, REPO_ROOT, free_port, live_env

ACCESS_TOKEN = "live-runtime-token"
MODEL = "scripted-model"
PROVIDER_KEY = "sk-provider-key-never-in-a-box"
MANAGER_ID = "u-manager"
ADMIN_ID = "u-admin"
START_SECONDS = 60.0
STOP_SECONDS = 15.0


def team_config(
    *,
    port: int,
    provider_base_url: str,
    isolation: str = "none",
    provider_api_key: str = PROVIDER_KEY,
    model: str = MODEL,
) -> str:
    return (
        f'[server]\nlisten_addr = "127.0.0.1:{port}"\naccess_token = "{ACCESS_TOKEN}"\n\n'
        f'[models]\ndefault = "scripted.{model}"\n\n'
        "[models.providers.scripted]\n"
        f'base_url = "{provider_base_url}"\napi_key = "{provider_api_key}"\n'
        f'models = ["{model}"]\n\n'
        f'[sandbox]\nprovider = "local"\nruntime = "builtin"\nlocal_isolation = "{isolation}"\n'
    )


@dataclass
class LiveTeam:
    """One server with its home, its scripted model, and helpers that act as the admin over HTTP."""

    home: Path
    port: int
    provider: ScriptedOpenAI | None
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            trust_env=False,
            timeout=10.0,
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        )

    def get(self, path: str, **params: str) -> Any:
        with self.client() as client:
            response = client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=dict(body))

    def say(self, room_id: str, content: str, *, sender_id: str = ADMIN_ID) -> dict[str, Any]:
        response = self.post(
            "/api/v1/messages", {"room_id": room_id, "sender_id": sender_id, "content": content}
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    def messages(self, room_id: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/messages", room_id=room_id)

    def messages_from(self, room_id: str, sender_id: str) -> list[dict[str, Any]]:
        return [
            message
            for message in self.messages(room_id)
            if message["sender_id"] == sender_id and message.get("kind", "message") == "message"
        ]

    def direct_room(self, agent_id: str) -> str:
        for room in self.get("/api/v1/rooms"):
            members = {member if isinstance(member, str) else member.get("id") for member in room["members"]}
            if room.get("is_direct") and members == {ADMIN_ID, agent_id}:
                return room["id"]
        raise AssertionError(f"no direct room of admin and {agent_id}")

    def agent(self, agent_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/agents/{agent_id}")

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{self.describe()}")
            time.sleep(0.05)

    def wait_running(self, agent_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for(
            lambda: (agent := self.agent(agent_id))["status"] == "running" and agent,
            f"{agent_id} running",
            timeout,
        )

    def box_record(self, slug: str) -> dict[str, Any]:
        paths = list((self.home / "agents" / slug).rglob("local-box.json"))
        assert paths, f"no local-box.json for {slug}"
        return json.loads(paths[0].read_text())

    def runtime_pid(self, slug: str) -> int | None:
        """The runtime's Python process: a child of the launcher (and of bwrap) in the box's process group."""
        group = self.box_record(slug)["pid"]
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, NotADirectoryError):
                continue
            if int(fields[2]) == group and fields[0] != "Z" and b"agent_runtime" in argv:
                return int(entry.name)
        return None

    def runtime_status(self, slug: str) -> dict[str, Any] | None:
        paths = list((self.home / "agents" / slug).rglob(".picoclaw/runtime-status.json"))
        try:
            return json.loads(paths[0].read_text()) if paths else None
        except (OSError, ValueError):
            return None

    def wait_connected(self, slug: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait_for(
            lambda: (status := self.runtime_status(slug)) is not None and status.get("connected") and status,
            f"the {slug} runtime to connect",
            timeout,
        )

    def gateway_log(self, slug: str) -> str:
        paths = list((self.home / "agents" / slug).rglob(".picoclaw/gateway.log"))
        return "\n".join(path.read_text(errors="replace") for path in paths)

    def describe(self) -> str:
        out = (self.home / "server.out").read_text(errors="replace")
        err = (self.home / "server.err").read_text(errors="replace")
        logs = "".join(
            f"\n--- {path.relative_to(self.home)}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.home.rglob("gateway.log"))
        )
        return f"--- server stdout\n{out[-3000:]}\n--- server stderr\n{err[-6000:]}{logs}"

    def kill_runtimes(self) -> None:
        for path in self.home.rglob("local-box.json"):
            with contextlib.suppress(OSError, ValueError, ProcessLookupError, PermissionError, TypeError):
                os.killpg(json.loads(path.read_text())["pid"], signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.kill_runtimes()


def start_team(
    home: Path,
    provider: ScriptedOpenAI | None,
    *,
    isolation: str = "none",
    runtime_env: Mapping[str, str] | None = None,
    provider_base_url: str = "",
    provider_api_key: str = PROVIDER_KEY,
    model: str = MODEL,
) -> LiveTeam:
    """runserver on a free port with the start-up bootstrap; returns once /healthz answers.

    The model is `provider` (scripted), or the real one at `provider_base_url` when no provider is given.
    """
    port = free_port()
    (home / "config.toml").write_text(
        team_config(
            port=port,
            provider_base_url=provider.base_url if provider is not None else provider_base_url,
            isolation=isolation,
            provider_api_key=provider_api_key,
            model=model,
        )
    )
    env = live_env(home, {"CSGCLAW_BOOTSTRAP_ON_START": "true", "CSGCLAW_RUNTIME_BACKOFF_SCALE": "0.01"})
    # The real local provider, not the fake one the other live tests use.
    env.pop("CSGCLAW_SANDBOX_PROVIDER_CLASS", None)
    env.update(runtime_env or {})
    with (home / "server.out").open("wb") as stdout, (home / "server.err").open("wb") as stderr:
        process = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", "--noreload"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    team = LiveTeam(home=home, port=port, provider=provider, process=process)
    deadline = time.monotonic() + START_SECONDS
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{team.base_url}/healthz", timeout=2.0, trust_env=False).text == "ok":
                return team
        if process.poll() is not None or time.monotonic() > deadline:
            team.stop()
            raise AssertionError(f"runserver did not become healthy\n{team.describe()}")
        time.sleep(0.1)
