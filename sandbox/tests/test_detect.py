"""sandbox/detect.py: the order of the runtimes, each faked present or absent, and the real probes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox import detect
from sandbox.detect import Probe, Probes, sandbox_detect

pytestmark = pytest.mark.timeout(20)

YES, NO = True, False


def probes(docker: bool, boxlite: bool, csghub: bool, bwrap: bool, *, bwrap_installed: bool = True) -> Probes:
    def fake(name: str, ok: bool, installed: bool = False) -> Callable[[], Probe]:
        return lambda: Probe(ok, f"{name}: {'present' if ok else 'absent'}", installed)

    return Probes(
        docker=fake("Docker", docker),
        boxlite=fake("BoxLite", boxlite),
        csghub=fake("CSGHub", csghub),
        bwrap=fake("bubblewrap", bwrap, bwrap_installed),
    )


@pytest.mark.parametrize(
    ("present", "provider", "findings"),
    [
        ((YES, YES, YES, YES), "docker", ["Docker: present"]),
        ((NO, YES, YES, YES), "boxlite-sdk", ["Docker: absent", "BoxLite: present"]),
        ((NO, NO, YES, YES), "csghub", ["Docker: absent", "BoxLite: absent", "CSGHub: present"]),
        (
            (NO, NO, NO, YES),
            "local",
            ["Docker: absent", "BoxLite: absent", "CSGHub: absent", "bubblewrap: present"],
        ),
    ],
)
def test_the_first_usable_runtime_wins_and_later_probes_do_not_run(present, provider, findings):
    found = sandbox_detect(probes(*present))

    assert (found.provider, found.findings, found.warning) == (provider, findings, "")
    assert found.report == "\n".join(["sandbox detection:", *(f"  {f}" for f in findings), f"  → {provider}"])


def test_local_with_bubblewrap_keeps_automatic_isolation():
    assert sandbox_detect(probes(NO, NO, NO, YES)).local_isolation == "auto"
    assert sandbox_detect(probes(YES, NO, NO, NO)).local_isolation is None


def test_local_without_bubblewrap_says_so_loudly_and_picks_it_up_once_installed():
    found = sandbox_detect(probes(NO, NO, NO, NO, bwrap_installed=False))

    assert (found.provider, found.local_isolation) == ("local", "auto")
    assert "WITHOUT ANY ISOLATION" in found.warning
    assert "apt install bubblewrap" in found.warning
    assert found.report.endswith("  → local\n" + found.warning)


def test_a_broken_bubblewrap_is_switched_off_instead_of_failing_every_start():
    found = sandbox_detect(probes(NO, NO, NO, NO, bwrap_installed=True))

    assert (found.provider, found.local_isolation) == ("local", "none")
    assert "WITHOUT ANY ISOLATION" in found.warning
    assert "bwrap --ro-bind / / true" in found.warning


# --- the real probes, with fake executables on PATH -------------------------------------------------------


def fake_executable(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_docker_probe(bin_dir: Path):
    assert detect.docker_probe() == Probe(False, 'Docker: no "docker" executable on PATH')

    fake_executable(bin_dir, "docker", 'echo "Cannot connect to the Docker daemon" >&2; exit 1')
    assert detect.docker_probe() == Probe(
        False, "Docker: installed, but its daemon is not reachable (Cannot connect to the Docker daemon)"
    )

    fake_executable(bin_dir, "docker", 'echo "27.1.0"')
    assert detect.docker_probe() == Probe(True, "Docker: daemon reachable (server 27.1.0)")


def test_a_docker_that_hangs_counts_as_absent(bin_dir: Path, monkeypatch):
    monkeypatch.setattr(detect, "PROBE_TIMEOUT", 0.5)
    fake_executable(bin_dir, "docker", "exec /bin/sleep 30")

    assert detect.docker_probe() == Probe(
        False, "Docker: installed, but its daemon is not reachable (no answer within 0.5 s)"
    )


def test_bwrap_probe(bin_dir: Path):
    assert detect.bwrap_probe() == Probe(False, "bubblewrap: no bwrap executable on PATH")

    fake_executable(bin_dir, "bwrap", 'echo "bwrap: No permissions to create new namespace" >&2; exit 1')
    assert detect.bwrap_probe() == Probe(
        False,
        "bubblewrap: installed, but cannot create a sandbox here "
        "(bwrap: No permissions to create new namespace)",
        True,
    )

    fake_executable(bin_dir, "bwrap", '[ "$*" = "--ro-bind / / true" ] || exit 3')
    assert detect.bwrap_probe() == Probe(True, "bubblewrap: works", True)


def test_csghub_probe():
    assert detect.csghub_probe({}) == Probe(
        False, "CSGHub: CSGHUB_API_BASE_URL and CSGHUB_USER_TOKEN not set"
    )
    assert detect.csghub_probe({"CSGHUB_API_BASE_URL": "https://hub.example.test"}) == Probe(
        False, "CSGHub: CSGHUB_USER_TOKEN not set"
    )
    present = {"CSGHUB_API_BASE_URL": "https://hub.example.test", "CSGHUB_USER_TOKEN": "t"}
    assert detect.csghub_probe(present) == Probe(
        True, "CSGHub: CSGHUB_API_BASE_URL and CSGHUB_USER_TOKEN set"
    )
    bad = detect.csghub_probe({**present, "CSGCLAW_SANDBOX_READY_TIMEOUT": "soon"})
    assert not bad.ok and bad.reason.startswith("CSGHub: variables set but invalid (")


def test_boxlite_probe(tmp_path: Path, monkeypatch):
    device = tmp_path / "kvm"
    monkeypatch.setattr(detect.importlib, "import_module", lambda name: object())
    assert detect.boxlite_probe(str(device)) == Probe(
        False, f"BoxLite: package installed, but {device} is not usable (No such file or directory)"
    )
    device.write_bytes(b"")
    assert detect.boxlite_probe(str(device)) == Probe(True, f"BoxLite: package installed and {device} usable")

    def missing(name: str) -> object:
        raise ImportError("No module named 'boxlite'")

    monkeypatch.setattr(detect.importlib, "import_module", missing)
    assert detect.boxlite_probe(str(device)) == Probe(
        False, "BoxLite: python package \"boxlite\" is not importable (No module named 'boxlite')"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any device node")
def test_a_kvm_device_without_permission_is_not_usable(tmp_path: Path, monkeypatch):
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    device.chmod(0)
    monkeypatch.setattr(detect.importlib, "import_module", lambda name: object())

    assert detect.boxlite_probe(str(device)).reason.endswith("is not usable (Permission denied)")
