"""Which sandbox provider this machine can run, for onboard to suggest or apply (and say why).

Order: Docker (daemon reachable), BoxLite (`boxlite` importable and /dev/kvm usable), CSGHub (its
environment variables set), else `local` — isolated with bubblewrap when `bwrap` works, otherwise not
isolated at all, which is said loudly. Every probe is injectable, so tests fake each runtime.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sandbox.providers.csghub_settings import CsghubSettings

# A daemon or bwrap that has not answered within this many seconds is as good as absent for onboard.
PROBE_TIMEOUT = 5.0
KVM_DEVICE = "/dev/kvm"
UNISOLATED_WARNING = (
    "WARNING: agents will run as plain processes of your user, WITHOUT ANY ISOLATION: they can read and "
    "change every file you can. To isolate them, {remedy}, or use Docker."
)
INSTALL_BWRAP = "install bubblewrap (apt install bubblewrap); it is used as soon as bwrap is on PATH"
REPAIR_BWRAP = 'make `bwrap --ro-bind / / true` work, then set [sandbox].local_isolation = "auto"'


@dataclass(frozen=True)
class Probe:
    """One runtime's answer: usable or not, and the reason in words a person can act on."""

    ok: bool
    reason: str
    # Installed, whether or not it works: a broken bwrap must be switched off, a missing one just appears.
    installed: bool = False


@dataclass(frozen=True)
class Probes:
    """The checks detection runs, in the order of the module docstring; tests replace any of them."""

    docker: Callable[[], Probe]
    boxlite: Callable[[], Probe]
    csghub: Callable[[], Probe]
    bwrap: Callable[[], Probe]


@dataclass(frozen=True)
class Detection:
    """The provider to use, the `[sandbox].local_isolation` it needs (None: leave it), and the findings."""

    provider: str
    findings: list[str] = field(default_factory=list)
    local_isolation: str | None = None
    warning: str = ""

    @property
    def report(self) -> str:
        lines = ["sandbox detection:", *(f"  {finding}" for finding in self.findings)]
        lines.append(f"  → {self.provider}")
        if self.warning:
            lines.append(self.warning)
        return "\n".join(lines)


def _run(argv: list[str]) -> tuple[int, str]:
    """Exit status and the first line of stderr (or stdout); 127 when the program cannot be run."""
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {PROBE_TIMEOUT:g} s"
    except OSError as error:
        return 127, error.strerror or str(error)
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return done.returncode, text[0] if text else ""


def docker_probe(docker_path: str = "docker") -> Probe:
    executable = shutil.which(docker_path)
    if executable is None:
        return Probe(False, f'Docker: no "{docker_path}" executable on PATH')
    status, text = _run([executable, "version", "--format", "{{.Server.Version}}"])
    if status != 0:
        return Probe(
            False, f"Docker: installed, but its daemon is not reachable ({text or f'exit {status}'})"
        )
    return Probe(True, f"Docker: daemon reachable (server {text})")


def boxlite_probe(kvm_device: str = KVM_DEVICE) -> Probe:
    try:
        importlib.import_module("boxlite")
    except Exception as error:  # the package's native code can fail in more ways than ImportError
        return Probe(False, f'BoxLite: python package "boxlite" is not importable ({error})')
    try:
        os.close(os.open(kvm_device, os.O_RDWR | os.O_CLOEXEC))
    except OSError as error:
        return Probe(False, f"BoxLite: package installed, but {kvm_device} is not usable ({error.strerror})")
    return Probe(True, f"BoxLite: package installed and {kvm_device} usable")


def csghub_probe(environ: Mapping[str, str] | None = None) -> Probe:
    environ = os.environ if environ is None else environ
    missing = [
        name for name in ("CSGHUB_API_BASE_URL", "CSGHUB_USER_TOKEN") if not environ.get(name, "").strip()
    ]
    if missing:
        return Probe(False, f"CSGHub: {' and '.join(missing)} not set")
    try:
        CsghubSettings.from_environ(environ)
    except Exception as error:  # SandboxError from the settings parser, said as the provider would
        return Probe(False, f"CSGHub: variables set but invalid ({error})")
    return Probe(True, "CSGHub: CSGHUB_API_BASE_URL and CSGHUB_USER_TOKEN set")


def bwrap_probe() -> Probe:
    executable = shutil.which("bwrap")
    if executable is None:
        return Probe(False, "bubblewrap: no bwrap executable on PATH")
    status, text = _run([executable, "--ro-bind", "/", "/", "true"])
    if status != 0:
        return Probe(
            False,
            f"bubblewrap: installed, but cannot create a sandbox here ({text or f'exit {status}'})",
            True,
        )
    return Probe(True, "bubblewrap: works", True)


DEFAULT_PROBES = Probes(docker=docker_probe, boxlite=boxlite_probe, csghub=csghub_probe, bwrap=bwrap_probe)


def sandbox_detect(probes: Probes = DEFAULT_PROBES) -> Detection:
    """The first usable provider; the probes after it do not run (Docker's can take seconds)."""
    findings: list[str] = []
    for provider, probe in (
        ("docker", probes.docker),
        ("boxlite-sdk", probes.boxlite),
        ("csghub", probes.csghub),
    ):
        result = probe()
        findings.append(result.reason)
        if result.ok:
            return Detection(provider, findings)
    bwrap = probes.bwrap()
    findings.append(bwrap.reason)
    if bwrap.ok:
        return Detection("local", findings, local_isolation="auto")
    if bwrap.installed:
        # "auto" would still try the broken bwrap and fail every start; "none" is what will really happen.
        return Detection(
            "local", findings, local_isolation="none", warning=UNISOLATED_WARNING.format(remedy=REPAIR_BWRAP)
        )
    return Detection(
        "local", findings, local_isolation="auto", warning=UNISOLATED_WARNING.format(remedy=INSTALL_BWRAP)
    )
