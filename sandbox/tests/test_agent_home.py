"""Tests for sandbox/agent_home.py: the server never follows a link its box planted (security S5)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from sandbox import boxspec
from sandbox.agent_home import LOG_TAIL_MAX_BYTES, UnsafePath, directory_ensure, file_write, log_tail
from sandbox.boxspec import render_picoclaw_files, seed_workspace

pytestmark = pytest.mark.timeout(10)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def agent_home(tmp_path: Path) -> Path:
    home = tmp_path / "agents" / "alice"
    (home / "local" / "home" / ".picoclaw").mkdir(parents=True)
    return home


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "config.toml"
    secret.write_text('[models.providers.remote]\napi_key = "sk-provider-secret"\n')
    return secret


def gateway_log(agent_home: Path) -> Path:
    return agent_home / "local" / "home" / ".picoclaw" / "gateway.log"


def test_the_tail_is_the_last_lines_of_a_regular_file(agent_home: Path) -> None:
    gateway_log(agent_home).write_text("".join(f"line {n}\n" for n in range(100)))

    assert log_tail(agent_home, gateway_log(agent_home), 3) == "line 97\nline 98\nline 99\n"
    assert log_tail(agent_home, gateway_log(agent_home), 500).count("\n") == 100


def test_a_missing_log_or_directory_has_no_logs(agent_home: Path) -> None:
    assert log_tail(agent_home, gateway_log(agent_home), 5) == ""
    assert log_tail(agent_home, agent_home / "nowhere" / "gateway.log", 5) == ""


def test_a_log_linked_to_the_config_never_shows_it(agent_home: Path, secret_file: Path) -> None:
    gateway_log(agent_home).symlink_to(secret_file)

    assert log_tail(agent_home, gateway_log(agent_home), 5) == ""


def test_a_linked_directory_on_the_way_never_shows_the_file_behind_it(
    agent_home: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "gateway.log").write_text("another agent's log\n")
    picoclaw = agent_home / "local" / "home" / ".picoclaw"
    picoclaw.rmdir()
    picoclaw.symlink_to(elsewhere, target_is_directory=True)

    assert log_tail(agent_home, gateway_log(agent_home), 5) == ""


@pytest.mark.timeout(5)
def test_a_fifo_answers_at_once_with_no_logs(agent_home: Path) -> None:
    os.mkfifo(gateway_log(agent_home))
    started = time.monotonic()

    assert log_tail(agent_home, gateway_log(agent_home), 5) == ""
    assert time.monotonic() - started < 1


@pytest.mark.timeout(5)
def test_a_link_to_dev_zero_answers_at_once_with_no_logs(agent_home: Path) -> None:
    gateway_log(agent_home).symlink_to("/dev/zero")

    assert log_tail(agent_home, gateway_log(agent_home), 5) == ""


def test_only_the_last_mebibyte_is_read(agent_home: Path) -> None:
    # A first line longer than the window: what is read never reaches back to it.
    head = "H" * (2 * LOG_TAIL_MAX_BYTES) + "\n"
    gateway_log(agent_home).write_text(head + "".join(f"tail {n}\n" for n in range(10)))

    text = log_tail(agent_home, gateway_log(agent_home), 5000)

    assert "H" not in text
    assert text == "".join(f"tail {n}\n" for n in range(10))


def test_a_line_cut_by_the_window_is_left_out(agent_home: Path) -> None:
    # 300,000 bytes a line: the last MiB holds three whole lines and the end of a fourth.
    lines = [f"{n} " + "x" * (300_000 - 3) + "\n" for n in range(10)]
    gateway_log(agent_home).write_text("".join(lines))

    assert log_tail(agent_home, gateway_log(agent_home), 5) == "".join(lines[-3:])


def test_writes_refuse_a_linked_directory_and_write_nothing_behind_it(
    agent_home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    picoclaw = agent_home / "local" / "home" / ".picoclaw"
    picoclaw.rmdir()
    picoclaw.symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePath) as refused:
        file_write(agent_home, picoclaw / "config.json", b"token")
    with pytest.raises(UnsafePath):
        directory_ensure(agent_home, picoclaw / "logs")

    assert str(refused.value) == "unsafe path in agent home: local/home/.picoclaw"
    assert list(outside.iterdir()) == []


def test_a_link_in_place_of_the_file_is_replaced_not_followed(agent_home: Path, secret_file: Path) -> None:
    target = agent_home / "local" / "home" / ".picoclaw" / "config.json"
    target.symlink_to(secret_file)
    before = secret_file.read_text()

    file_write(agent_home, target, b"{}")

    assert secret_file.read_text() == before
    assert not target.is_symlink()
    assert (target.read_bytes(), mode_of(target)) == (b"{}", 0o600)


def test_rendering_into_a_linked_picoclaw_home_fails_and_writes_nothing_outside(
    agent_home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    picoclaw = agent_home / "local" / "home" / ".picoclaw"
    picoclaw.rmdir()
    picoclaw.symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePath, match=r"^unsafe path in agent home: local/home/\.picoclaw$"):
        render_picoclaw_files(
            picoclaw,
            base_url="http://h:1",
            bot_id="u-alice",
            access_token="agent-token",
            model_id="m",
            agent_home=agent_home,
        )

    assert list(outside.iterdir()) == []


def test_seeding_refuses_a_linked_directory_in_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    (templates / "worker" / "memory").mkdir(parents=True)
    (templates / "worker" / "memory" / "MEMORY.md").write_text("template")
    monkeypatch.setattr(boxspec, "WORKSPACE_TEMPLATES_DIR", templates)
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace = tmp_path / "agents" / "bob" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "memory").symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafePath, match=r"^unsafe path in agent home: workspace/memory$"):
        seed_workspace(workspace, manager=False)

    assert list(outside.iterdir()) == []


def test_the_agent_home_is_0700_and_rendered_files_0600(tmp_path: Path) -> None:
    home = tmp_path / "agents" / "carol"
    home.mkdir(parents=True, mode=0o755)
    home.chmod(0o755)

    render_picoclaw_files(home / ".picoclaw", base_url="", bot_id="u-carol", access_token="t", model_id="m")

    assert mode_of(home) == 0o700
    assert mode_of(home / ".picoclaw" / "config.json") == 0o600
    assert mode_of(home / ".picoclaw" / ".security.yml") == 0o600
