"""Tests for sandbox/providers/boxlite_sdk.py with a fake `boxlite` package injected into sys.modules."""

from __future__ import annotations

import asyncio
import io
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.providers.base import BoxNotFound, SandboxError, SandboxUnavailable
from sandbox.providers.boxlite_sdk import BoxliteSdkProvider, BoxliteSdkRuntime
from sandbox.tests.factories import (
    IMAGE,
    agent_spec,
    example_environment_mismatches,
    example_spec,
    provider_secrets_in,
    sandbox_config,
)

pytestmark = pytest.mark.timeout(10)


class PanicException(BaseException):
    """Stands in for pyo3_runtime.PanicException, which PyO3 raises for a Rust panic."""


class Execution:
    def __init__(self, sdk: FakeSdk, stdout: list[str], stderr: list[str], exit_code: int) -> None:
        self.sdk = sdk
        self._stdout, self._stderr, self._exit_code = stdout, stderr, exit_code

    async def _lines(self, lines: list[str]) -> Any:
        for line in lines:
            self.sdk.fail_at("exec.lines")
            yield line

    def stdout(self) -> Any:
        return self._lines(self._stdout)

    def stderr(self) -> Any:
        return self._lines(self._stderr)

    async def wait(self) -> SimpleNamespace:
        self.sdk.fail_at("exec.wait")
        await asyncio.sleep(self.sdk.exec_seconds)
        return SimpleNamespace(exit_code=self._exit_code)


class SdkInfo:
    def __init__(self, sdk: FakeSdk, box: SdkBox) -> None:
        self.sdk = sdk
        self.id = f"id-{box.name}"
        self.name = box.name
        self.created_at = sdk.created_at
        self._status = box.status

    @property
    def state(self) -> SimpleNamespace:
        # PyO3 getters run Rust code, so reading a field can fail too.
        self.sdk.fail_at("info.state")
        return SimpleNamespace(status=self._status)


class SdkBox:
    def __init__(self, sdk: FakeSdk, name: str) -> None:
        self.sdk = sdk
        self.name = name
        self.status = "configured"

    async def start(self) -> None:
        self.sdk.calls.append(("start", self.name))
        self.sdk.fail_at("start")
        self.status = "running"

    async def stop(self) -> None:
        self.sdk.calls.append(("stop", self.name))
        self.sdk.fail_at("stop")
        self.status = "stopped"

    def info(self) -> SdkInfo:
        self.sdk.fail_at("info")
        return SdkInfo(self.sdk, self)

    async def exec(self, command: str, args: list[str]) -> Execution:
        self.sdk.calls.append(("exec", command, args))
        self.sdk.fail_at("exec")
        return Execution(self.sdk, *self.sdk.exec_result)


class FakeSdk:
    """State shared by the fake package's classes, so tests can see and steer what the provider did."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.boxes: dict[str, SdkBox] = {}
        # Call site name (a class, a method, "info.state", "exec.lines", "exec.wait") → what it raises.
        self.failures: dict[str, BaseException] = {}
        self.reject_bool_volumes = False
        self.created_at: object = datetime(2026, 4, 24, 10)
        self.exec_result: tuple[list[str], list[str], int] = (["a", "b\n"], ["warn"], 0)
        self.exec_seconds = 0.0

    def fail_at(self, site: str) -> None:
        if site in self.failures:
            raise self.failures[site]

    def module(self, *, with_image_registry: bool = True) -> types.ModuleType:
        sdk = self
        module = types.ModuleType("boxlite")

        class Options:
            def __init__(self, home_dir: str, image_registries: list) -> None:
                sdk.fail_at("Options")
                sdk.calls.append(("Options", home_dir, image_registries))

        class BoxOptions:
            def __init__(self, **kwargs: Any) -> None:
                sdk.fail_at("BoxOptions")
                if sdk.reject_bool_volumes and any(isinstance(v[2], bool) for v in kwargs["volumes"]):
                    raise TypeError("argument 'volumes': 'bool' object cannot be converted to 'PyString'")
                self.kwargs = kwargs
                sdk.calls.append(("BoxOptions", kwargs))

        class Boxlite:
            def __init__(self, options: Options) -> None:
                sdk.fail_at("Boxlite")

            async def create(self, options: BoxOptions, name: str) -> SdkBox:
                sdk.calls.append(("create", name))
                sdk.fail_at("create")
                sdk.boxes[name] = SdkBox(sdk, name)
                return sdk.boxes[name]

            async def get(self, id_or_name: str) -> SdkBox | None:
                sdk.fail_at("get")
                return sdk.boxes.get(id_or_name)

            async def remove(self, id_or_name: str, force: bool = False) -> None:
                sdk.calls.append(("remove", id_or_name, force))
                sdk.fail_at("remove")
                if id_or_name not in sdk.boxes:
                    raise RuntimeError(f"box not found: {id_or_name}")
                del sdk.boxes[id_or_name]

        module.Options = Options
        module.BoxOptions = BoxOptions
        module.Boxlite = Boxlite
        if with_image_registry:

            def image_registry(host: str) -> tuple[str, str]:
                sdk.fail_at("ImageRegistry")
                return ("registry", host)

            module.ImageRegistry = image_registry
        return module


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> FakeSdk:
    fake = FakeSdk()
    monkeypatch.setitem(sys.modules, "boxlite", fake.module())
    return fake


@pytest.fixture
def runtime(sdk: FakeSdk, tmp_path: Path) -> Any:
    opened = BoxliteSdkProvider(sandbox_config()).open(tmp_path / "boxlite")
    yield opened
    opened.close()


def test_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "boxlite", None)

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteSdkProvider(sandbox_config()).open(tmp_path)

    assert str(raised.value) == 'boxlite-sdk: python package "boxlite" is not installed (pip install boxlite)'


def test_open_passes_home_and_registries(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    assert sdk.calls == [
        (
            "Options",
            str(tmp_path / "boxlite"),
            [("registry", "harbor.opencsg.com"), ("registry", "docker.io")],
        )
    ]
    assert (tmp_path / "boxlite").is_dir()


def test_older_packages_take_registry_host_strings(
    sdk: FakeSdk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "boxlite", sdk.module(with_image_registry=False))

    BoxliteSdkProvider(sandbox_config(debian_registries=["mirror.example"])).open(tmp_path).close()

    assert sdk.calls == [("Options", str(tmp_path), ["mirror.example"])]


def test_runtime_that_cannot_open(sdk: FakeSdk, tmp_path: Path) -> None:
    sdk.failures["Boxlite"] = RuntimeError("/dev/kvm: permission denied")

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteSdkProvider(sandbox_config()).open(tmp_path)

    assert str(raised.value) == "boxlite-sdk: open runtime: /dev/kvm: permission denied"


def test_create_builds_options_then_starts(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    spec = agent_spec(tmp_path)

    box = runtime.create(spec)

    options = next(call[1] for call in sdk.calls if call[0] == "BoxOptions")
    assert options == {
        "env": list(spec.env.items()),
        "detach": True,
        "auto_remove": False,
        "cmd": spec.cmd,
        "image": IMAGE,
        "volumes": [(m.host_path, m.guest_path, False) for m in spec.mounts],
    }
    assert [call for call in sdk.calls if call[0] in ("create", "start")] == [
        ("create", "alice"),
        ("start", "alice"),
    ]
    info = box.info()
    assert (info.id, info.name, info.state) == ("id-alice", "alice", "running")
    assert info.created_at == datetime(2026, 4, 24, 10, tzinfo=UTC)


@pytest.mark.usefixtures("provider_in_server_env")
def test_the_box_options_carry_every_section_6_2_variable_and_no_provider_key(
    sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    runtime.create(example_spec(tmp_path))

    options = next(call[1] for call in sdk.calls if call[0] == "BoxOptions")
    handed = dict(options["env"])
    assert len(handed) == len(options["env"])
    assert example_environment_mismatches(handed) == {}
    assert provider_secrets_in(handed) == []


def test_volume_modes_fall_back_to_strings(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    sdk.reject_bool_volumes = True
    spec = agent_spec(tmp_path)
    spec.mounts[1].read_only = True

    runtime.create(spec)

    options = next(call[1] for call in sdk.calls if call[0] == "BoxOptions")
    assert [volume[2] for volume in options["volumes"]] == ["rw", "ro"]


def test_rootfs_images(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    spec = agent_spec(tmp_path)
    spec.image = f"rootfs:{rootfs}"

    runtime.create(spec)

    options = next(call[1] for call in sdk.calls if call[0] == "BoxOptions")
    assert options["rootfs_path"] == str(rootfs)
    assert "image" not in options


@pytest.mark.parametrize(
    ("make", "suffix"),
    [(lambda p: None, "is not accessible"), (lambda p: p.write_text("x"), "is not a directory")],
)
def test_bad_rootfs_paths(make: Any, suffix: str, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    target = tmp_path / "rootfs"
    make(target)
    spec = agent_spec(tmp_path)
    spec.image = f"rootfs:{target}"

    with pytest.raises(SandboxError) as raised:
        runtime.create(spec)

    assert str(raised.value) == f'invalid sandbox image: rootfs path "{target}" {suffix}'


def test_start_failure_closes_the_handle(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    sdk.failures["start"] = RuntimeError("vm failed to boot")

    with pytest.raises(SandboxError) as raised:
        runtime.create(agent_spec(tmp_path))

    assert str(raised.value) == "start boxlite box: vm failed to boot"


def test_get_missing_is_not_found(runtime: BoxliteSdkRuntime) -> None:
    with pytest.raises(BoxNotFound, match=r"^get boxlite box: sandbox not found: ghost$"):
        runtime.get("ghost")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("configured", "created"),
        ("created", "created"),
        ("running", "running"),
        ("stopping", "unknown"),
        ("stopped", "stopped"),
        ("paused", "unknown"),
    ],
)
def test_state_mapping(
    status: str, state: str, sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    runtime.create(agent_spec(tmp_path))
    sdk.boxes["alice"].status = status

    assert runtime.get("alice").info().state == state


def test_stop_and_its_unsupported_options(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    box = runtime.create(agent_spec(tmp_path))

    with pytest.raises(SandboxError, match=r"^unsupported sandbox option: force stop$"):
        box.stop(force=True)
    with pytest.raises(SandboxError, match=r"^unsupported sandbox option: stop timeout$"):
        box.stop(timeout=3)
    box.stop()

    assert box.info().state == "stopped"


def test_exec_copies_lines_and_returns_the_exit_code(
    sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    sdk.exec_result = (["one", "two\n"], ["oops"], 5)
    box = runtime.create(agent_spec(tmp_path))
    stdout, stderr = io.BytesIO(), io.BytesIO()

    exit_code = box.exec(["ls", "-l", "/tmp"], stdout=stdout, stderr=stderr)

    assert exit_code == 5
    assert (stdout.getvalue(), stderr.getvalue()) == (b"one\ntwo\n", b"oops\n")
    assert ("exec", "ls", ["-l", "/tmp"]) in sdk.calls


def test_logs_use_tail(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    box = runtime.create(agent_spec(tmp_path))

    assert box.logs(20) == "a\nb\n"
    assert sdk.calls[-1] == ("exec", "tail", ["-n", "20", "/home/picoclaw/.picoclaw/gateway.log"])


def test_remove_passes_force_and_maps_not_found(
    sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    runtime.create(agent_spec(tmp_path))

    runtime.remove("alice", force=True)

    assert sdk.calls[-1] == ("remove", "alice", True)
    with pytest.raises(BoxNotFound, match=r"^remove boxlite box: box not found: alice$"):
        runtime.remove("alice")


# The SDK's failures as a PyO3 package raises them: Python exceptions and a Rust panic (a BaseException).
SDK_ERRORS = [
    pytest.param(ValueError("invalid image reference"), id="ValueError"),
    pytest.param(OSError(5, "Input/output error"), id="OSError"),
    pytest.param(KeyError("volumes"), id="KeyError"),
    pytest.param(RuntimeError("vm crashed"), id="RuntimeError"),
    pytest.param(PanicException("called `Option::unwrap()` on a `None` value"), id="PanicException"),
]


@pytest.mark.parametrize("site", ["ImageRegistry", "Options", "Boxlite"])
@pytest.mark.parametrize("error", SDK_ERRORS)
def test_every_failure_to_open_is_unavailable(
    site: str, error: BaseException, sdk: FakeSdk, tmp_path: Path
) -> None:
    sdk.failures[site] = error

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteSdkProvider(sandbox_config()).open(tmp_path)

    assert type(raised.value) is SandboxUnavailable
    assert str(raised.value) == f"boxlite-sdk: open runtime: {error}"


def test_an_open_failure_saying_not_found_is_still_unavailable(sdk: FakeSdk, tmp_path: Path) -> None:
    sdk.failures["Boxlite"] = RuntimeError("/dev/kvm not found")

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteSdkProvider(sandbox_config()).open(tmp_path)

    assert type(raised.value) is SandboxUnavailable


def test_a_package_that_fails_to_import_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "site" / "boxlite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise OSError("libboxlite.so: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "boxlite", raising=False)

    with pytest.raises(SandboxUnavailable) as raised:
        BoxliteSdkProvider(sandbox_config()).open(tmp_path / "home")

    assert str(raised.value) == "boxlite-sdk: open runtime: libboxlite.so: cannot open shared object file"


def test_a_home_that_cannot_be_created_is_unavailable(sdk: FakeSdk, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(SandboxUnavailable, match=r"^boxlite-sdk: open runtime: \[Errno 20\] Not a directory"):
        BoxliteSdkProvider(sandbox_config()).open(tmp_path / "file" / "boxlite")


def _exec(runtime: BoxliteSdkRuntime) -> int:
    return runtime.get("alice").exec(["ls"], stdout=io.BytesIO(), stderr=io.BytesIO())


# Fake SDK call site → the operation that reaches it and the name its errors carry.
SDK_CALL_SITES = [
    ("BoxOptions", "create boxlite box", lambda runtime, spec: runtime.create(spec)),
    ("create", "create boxlite box", lambda runtime, spec: runtime.create(spec)),
    ("start", "start boxlite box", lambda runtime, spec: runtime.create(spec)),
    ("get", "get boxlite box", lambda runtime, spec: runtime.get("alice")),
    ("remove", "remove boxlite box", lambda runtime, spec: runtime.remove("alice")),
    ("stop", "stop boxlite box", lambda runtime, spec: runtime.get("alice").stop()),
    ("info", "inspect boxlite box", lambda runtime, spec: runtime.get("alice").info()),
    ("info.state", "inspect boxlite box", lambda runtime, spec: runtime.get("alice").info()),
    ("exec", "exec boxlite box", lambda runtime, spec: _exec(runtime)),
    ("exec.lines", "exec boxlite box", lambda runtime, spec: _exec(runtime)),
    ("exec.wait", "exec boxlite box", lambda runtime, spec: _exec(runtime)),
]


@pytest.mark.parametrize(
    ("site", "op", "operation"), SDK_CALL_SITES, ids=[site[0] for site in SDK_CALL_SITES]
)
@pytest.mark.parametrize("error", SDK_ERRORS)
def test_every_sdk_failure_is_wrapped_with_the_operation(
    site: str,
    op: str,
    operation: Any,
    error: BaseException,
    sdk: FakeSdk,
    runtime: BoxliteSdkRuntime,
    tmp_path: Path,
) -> None:
    spec = agent_spec(tmp_path)
    runtime.create(spec)
    sdk.failures[site] = error

    with pytest.raises(SandboxError) as raised:
        operation(runtime, spec)

    assert type(raised.value) is SandboxError
    assert str(raised.value) == f"{op}: {error}"


def test_an_sdk_failure_saying_not_found_is_box_not_found(sdk: FakeSdk, runtime: BoxliteSdkRuntime) -> None:
    sdk.failures["get"] = ValueError("no such box: ghost")

    with pytest.raises(BoxNotFound, match=r"^get boxlite box: no such box: ghost$"):
        runtime.get("ghost")


def test_an_exec_past_its_timeout_is_an_error(
    sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    box = runtime.create(agent_spec(tmp_path))
    sdk.exec_seconds = 5.0

    with pytest.raises(SandboxError, match=r"^exec boxlite box: timed out after 0.05 s$"):
        box.exec(["sleep", "5"], stdout=io.BytesIO(), stderr=io.BytesIO(), timeout=0.05)


def test_an_sdk_timeout_without_an_exec_timeout_is_wrapped(
    sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    box = runtime.create(agent_spec(tmp_path))
    sdk.failures["exec.wait"] = TimeoutError()

    with pytest.raises(SandboxError) as raised:
        box.exec(["ls"], stdout=io.BytesIO(), stderr=io.BytesIO())

    # An exception without a message is named by its type, so the text never ends in ": ".
    assert str(raised.value) == "exec boxlite box: TimeoutError"


def test_an_interrupt_is_not_wrapped(sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path) -> None:
    sdk.failures["BoxOptions"] = KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        runtime.create(agent_spec(tmp_path))


@pytest.mark.parametrize("created_at", [1e20, float("inf"), -1e20])
def test_a_creation_time_out_of_range_is_unknown(
    created_at: float, sdk: FakeSdk, runtime: BoxliteSdkRuntime, tmp_path: Path
) -> None:
    sdk.created_at = created_at

    assert runtime.create(agent_spec(tmp_path)).info().created_at is None
