"""A newcomer's first `make run`: a fresh clone, an empty HOME, and a manager that comes up unaided.

The clone reuses this checkout's virtualenv through a symlink: installing every requirement again would
take minutes and need the network. `make run` installs only when the venv's stamp for the clone's
requirements is missing or older than them; the test skips when it is missing and dates the clone's
requirement files back, so make never rebuilds the shared venv.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from csgclaw_site.testing.live import LOOPBACK, REPO_ROOT, free_port
from sandbox import detect

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

HEALTHZ_SECONDS = 120.0
MANAGER_SECONDS = 90.0
LOG_TAIL = 6000


def stamp_name(clone: Path) -> str:
    """The Makefile's STAMP for the clone's requirements (`cksum` of both files)."""
    text = (clone / "requirements.txt").read_bytes() + (clone / "requirements-dev.txt").read_bytes()
    done = subprocess.run(["cksum"], input=text, capture_output=True, check=True)
    return f".installed-{done.stdout.split()[0].decode()}"


def processes_of(home: Path) -> list[int]:
    """Pids whose command line or environment names `home`: the server and the agent runtimes it
    spawned (those start their own sessions, so killing make's process group misses them)."""
    marker = str(home).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes() or marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("needs make and git")
    target = tmp_path / "csgclaw-django"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(target)], check=True, timeout=60)
    venv = REPO_ROOT / ".venv"
    stamp = venv / stamp_name(target)
    if not stamp.exists():
        pytest.skip(f"{venv} is not installed for the committed requirements; run `make install` first")
    (target / ".venv").symlink_to(venv)
    # A clone's files are newer than the stamp, which would make `make` reinstall into the shared venv.
    installed_at = stamp.stat().st_mtime - 1
    for name in ("requirements.txt", "requirements-dev.txt"):
        os.utime(target / name, (installed_at, installed_at))
    up_to_date = subprocess.run(["make", "-q", "install"], cwd=target, capture_output=True, timeout=30)
    assert up_to_date.returncode == 0, "make would reinstall the shared venv"
    return target


@pytest.fixture
def newcomer_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    kill_all(processes_of(home))


def test_make_run_on_a_fresh_clone_reaches_a_running_manager(clone: Path, newcomer_home: Path):
    port = free_port()
    args = ["make", "run", f"ADDR={LOOPBACK}:{port}"]
    found = detect.sandbox_detect()
    if found.provider != "local":
        # This machine can run another sandbox (say BoxLite), whose first box pulls an image from a
        # registry: neither bounded in time nor available offline. The bare-machine path is the subject.
        args.append("SANDBOX=local")
    env = {name: os.environ[name] for name in ("PATH", "LANG", "TMPDIR") if name in os.environ}
    env["HOME"] = str(newcomer_home)
    log_path = clone.parent / "make-run.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            args, cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-LOG_TAIL:]

    try:
        base = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + HEALTHZ_SECONDS
        while True:
            assert server.poll() is None, f"make run exited {server.returncode}\n{log_tail()}"
            assert time.monotonic() < deadline, f"/healthz never answered\n{log_tail()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2.0).status_code == 200:
                    break
            time.sleep(0.5)

        config_path = newcomer_home / ".csgclaw" / "config.toml"
        config = tomllib.loads(config_path.read_text())
        assert config["sandbox"]["provider"] == "local"
        headers = {"Authorization": f"Bearer {config['server']['access_token']}"}
        deadline = time.monotonic() + MANAGER_SECONDS
        manager: dict = {}
        while time.monotonic() < deadline:
            response = httpx.get(f"{base}/api/v1/agents/u-manager", headers=headers, timeout=5.0)
            if response.status_code == 200:
                manager = response.json()
                if manager.get("status") == "running":
                    break
            time.sleep(1.0)
        assert manager.get("status") == "running", f"{json.dumps(manager)}\n{log_tail()}"
        if "SANDBOX=local" not in args:
            assert "sandbox detection:" in log_path.read_text(errors="replace")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
