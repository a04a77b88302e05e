"""The command line and process rules (spec §1.1, §1.2, §1.5): no Django, exit codes, SIGTERM."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_runtime import VERSION

PACKAGE = Path(__file__).resolve().parents[1]
FORBIDDEN = {"django", "im", "agents", "bots", "sandbox", "csgclaw_site"}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(PACKAGE.parent),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_version_prints_the_version(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "version"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (0, VERSION + "\n")


def test_missing_bot_id_exits_2_with_picoclaw_text(tmp_path):
    env = _env(tmp_path, CSGCLAW_BASE_URL="http://127.0.0.1:9", CSGCLAW_ACCESS_TOKEN="t")
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "gateway", "-d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "csgclaw bot_id is required" in result.stdout


def test_a_clean_interpreter_importing_the_runtime_loads_no_django(tmp_path):
    code = (
        "import sys, importlib, pkgutil, agent_runtime, agent_runtime.__main__\n"
        "for m in pkgutil.walk_packages(agent_runtime.__path__, 'agent_runtime.'):\n"
        "    if '.tests' not in m.name and m.name != 'agent_runtime.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in " + repr(sorted(FORBIDDEN)) + "))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_module_of_the_package_imports_the_server():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "tests" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    assert offenders == []


@pytest.mark.timeout(60)
def test_gateway_runs_until_sigterm_and_exits_0_within_2_s(tmp_path):
    env = _env(
        tmp_path,
        CSGCLAW_BASE_URL=f"http://127.0.0.1:{_free_port()}",
        CSGCLAW_ACCESS_TOKEN="secret-box-token",
        PICOCLAW_CHANNELS_CSGCLAW_BOT_ID="u-dev",
        CSGCLAW_RUNTIME_BACKOFF_SCALE="0.01",
        CSGCLAW_RUNTIME_HEALTH_ADDR="off",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime", "gateway", "-d"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status_path = tmp_path / ".picoclaw" / "runtime-status.json"
    try:
        deadline = time.monotonic() + 30
        while not (status_path.exists() and json.loads(status_path.read_text())["last_error"]):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stdout.read()
    assert "starting builtin runtime" in log and "stopped" in log
    assert "secret-box-token" not in log
    status = json.loads(status_path.read_text())
    assert (status["runtime"], status["connected"], status["last_error"]) == ("builtin", False, "stopped")
