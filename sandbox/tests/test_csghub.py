"""Tests for sandbox/providers/csghub.py against respx mocks of the CSGHub sandbox service."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx

from sandbox.providers.base import BoxNotFound, BoxSpec, Mount, SandboxError, SandboxUnavailable
from sandbox.providers.csghub import CsghubBox, CsghubProvider, CsghubRuntime, CsghubSettings
from sandbox.providers.csghub_settings import parse_duration
from sandbox.tests.factories import (
    EXAMPLE_ENVIRONMENT,
    IMAGE,
    agent_spec,
    example_environment_mismatches,
    provider_secrets_in,
    sandbox_config,
)

pytestmark = pytest.mark.timeout(10)

API = "https://hub.example"
GATEWAY = "https://gateway.example"
SANDBOXES = f"{API}/api/v1/sandboxes"
ENVIRON = {
    "CSGHUB_API_BASE_URL": API + "/",
    "CSGHUB_USER_TOKEN": "hub-token",
    "CSGHUB_AIGATEWAY_URL": GATEWAY,
    "CSGCLAW_PVC_MOUNT_PATH": "/opt/csgclaw",
}


def sandbox(status: str, name: str = "alice", *, wrap: bool = False) -> dict:
    record = {
        "spec": {"sandbox_name": name, "image": IMAGE},
        "state": {"status": status, "created_at": "2026-04-24T10:00:00Z"},
    }
    return {"data": record} if wrap else record


def settings(**overrides: object) -> CsghubSettings:
    # Tiny intervals keep the polling tests fast; the environment clamps real values to >= 0.5 s.
    base = CsghubSettings.from_environ(ENVIRON)
    return dataclasses.replace(base, **{"poll_interval": 0.001, "ready_timeout": 2.0, **overrides})


@pytest.fixture
def runtime() -> Iterator[CsghubRuntime]:
    opened = CsghubRuntime(settings())
    yield opened
    opened.close()


@pytest.fixture
def hub() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def pvc_spec(slug: str = "alice") -> BoxSpec:
    """An agent spec whose state directory lives on the PVC that CSGHub sandboxes mount."""
    return agent_spec(Path("/opt/csgclaw/home"), slug=slug, agent_id=f"u-{slug}")


def test_required_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CSGHUB_API_BASE_URL", raising=False)
    monkeypatch.delenv("CSGHUB_USER_TOKEN", raising=False)
    provider = CsghubProvider(sandbox_config(provider="csghub"))

    with pytest.raises(SandboxUnavailable, match=r"^csghub: CSGHUB_API_BASE_URL is required$"):
        provider.open(tmp_path)
    monkeypatch.setenv("CSGHUB_API_BASE_URL", API)
    with pytest.raises(SandboxUnavailable, match=r"^csghub: CSGHUB_USER_TOKEN is required$"):
        provider.open(tmp_path)
    monkeypatch.setenv("CSGHUB_USER_TOKEN", "t")
    provider.open(tmp_path).close()


def test_defaults_and_gateway_fallback() -> None:
    loaded = CsghubSettings.from_environ({"CSGHUB_API_BASE_URL": API, "CSGHUB_USER_TOKEN": "t"})

    assert loaded.gateway_url == API
    assert (loaded.ready_timeout, loaded.poll_interval) == (300.0, 3.0)
    assert loaded.pvc_mount_path == "/opt/csgclaw"
    assert (loaded.resource_id, loaded.sandbox_port, loaded.sandbox_timeout) == (None, None, None)
    assert loaded.skills_poll_interval is None


INTEGER_VARIABLES = ["CSGCLAW_RESOURCE_ID", "CSGCLAW_SANDBOX_PORT", "CSGCLAW_SANDBOX_TIMEOUT"]
DURATION_VARIABLES = ["CSGCLAW_SANDBOX_READY_TIMEOUT", "CSGCLAW_SANDBOX_POLL_INTERVAL"]


@pytest.mark.parametrize("variable", INTEGER_VARIABLES)
@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "1_000", "1.5", "1e3", "٣", "abc", pytest.param("1" * 5000, id="too-many-digits")],
)
def test_integer_variables_take_ascii_digits_only(variable: str, value: str) -> None:
    with pytest.raises(SandboxError) as raised:
        CsghubSettings.from_environ({**ENVIRON, variable: f" {value} "})

    assert str(raised.value) == f"{variable} must be an integer: {value}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [(variable, "-1") for variable in INTEGER_VARIABLES + DURATION_VARIABLES]
    + [(variable, "-2s") for variable in DURATION_VARIABLES],
)
def test_negative_numbers_are_rejected(variable: str, value: str) -> None:
    with pytest.raises(SandboxError) as raised:
        CsghubSettings.from_environ({**ENVIRON, variable: value})

    assert str(raised.value) == f"{variable} must be >= 0"


@pytest.mark.parametrize("variable", DURATION_VARIABLES)
@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "-inf", "1_000", "1e3", "٣", "soon", "5x", pytest.param("1" + "0" * 400, id="overflow")],
)
def test_duration_variables_take_finite_ascii_numbers_only(variable: str, value: str) -> None:
    with pytest.raises(SandboxError) as raised:
        CsghubSettings.from_environ({**ENVIRON, variable: value})

    assert str(raised.value) == f"{variable} must be a duration such as 90s or a number of seconds: {value}"


@pytest.mark.parametrize("variable", INTEGER_VARIABLES + DURATION_VARIABLES)
def test_blank_number_variables_mean_the_default(variable: str) -> None:
    assert CsghubSettings.from_environ({**ENVIRON, variable: "  "}) == CsghubSettings.from_environ(ENVIRON)


def test_subpath_prefix_must_stay_inside_the_pvc() -> None:
    with pytest.raises(SandboxError) as raised:
        CsghubSettings.from_environ({**ENVIRON, "CSGCLAW_PVC_SUBPATH_PREFIX": "team/../other"})

    assert str(raised.value) == 'csghub: CSGCLAW_PVC_SUBPATH_PREFIX must not contain ".."'


def test_numbers_durations_and_clamps() -> None:
    loaded = CsghubSettings.from_environ(
        {
            **ENVIRON,
            "CSGCLAW_RESOURCE_ID": "7",
            "CSGCLAW_SANDBOX_PORT": "0",
            "CSGCLAW_SANDBOX_TIMEOUT": "3600",
            "CSGCLAW_SANDBOX_READY_TIMEOUT": "1s",
            "CSGCLAW_SANDBOX_POLL_INTERVAL": "2m",
            "CSGCLAW_PVC_SUBPATH_PREFIX": "/team/a/",
            "SKILLS_POLL_INTERVAL": "",
        }
    )

    assert (loaded.resource_id, loaded.sandbox_port, loaded.sandbox_timeout) == (7, 0, 3600)
    assert (loaded.ready_timeout, loaded.poll_interval) == (5.0, 30.0)
    assert loaded.pvc_subpath_prefix == "team/a"
    assert loaded.skills_poll_interval == ""
    assert (
        CsghubSettings.from_environ({**ENVIRON, "CSGCLAW_SANDBOX_POLL_INTERVAL": "0.1"}).poll_interval == 0.5
    )


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("90", 90.0),
        ("+90", 90.0),
        ("1.5", 1.5),
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        (".5s", 0.5),
        ("1h", 3600.0),
        ("-0", 0.0),
    ],
)
def test_parse_duration(raw: str, seconds: float) -> None:
    assert parse_duration("X", raw) == seconds


def test_create_posts_the_spec_starts_and_waits(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    create = hub.post(SANDBOXES).respond(201, json=sandbox("created"))
    start = hub.put(f"{SANDBOXES}/alice/status/start").respond(200, json={})
    polls = hub.get(f"{SANDBOXES}/alice").mock(
        side_effect=[
            httpx.Response(200, json=sandbox("deploying")),
            httpx.Response(200, json=sandbox("deploying", wrap=True)),
            httpx.Response(200, json=sandbox("running")),
        ]
    )
    gateway = hub.get(f"{GATEWAY}/v1/sandboxes/alice/", params={"port": "8888"}).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(502), httpx.Response(200)]
    )
    spec = pvc_spec()

    box = runtime.create(spec)

    assert box.name == "alice"
    body = json.loads(create.calls[0].request.content)
    assert body == {
        "image": IMAGE,
        "sandbox_name": "alice",
        "environments": {**spec.env, "CSGHUB_API_BASE_URL": API, "CSGHUB_USER_TOKEN": "hub-token"},
        "volumes": [
            {
                "sandbox_mount_subpath": "home/agents/alice/workspace",
                "sandbox_mount_path": spec.mounts[0].guest_path,
            },
            {"sandbox_mount_subpath": "home/projects", "sandbox_mount_path": spec.mounts[1].guest_path},
        ],
    }
    assert list(body) == ["image", "sandbox_name", "environments", "volumes"]
    assert (start.call_count, polls.call_count, gateway.call_count) == (1, 3, 3)
    for route in (create, start, polls, gateway):
        assert route.calls[0].request.headers["Authorization"] == "Bearer hub-token"


def test_create_body_optional_fields_and_prefix(hub: respx.MockRouter) -> None:
    configured = settings(
        cluster_id="c1",
        resource_id=7,
        sandbox_port=8080,
        sandbox_timeout=0,
        pvc_subpath_prefix="team",
        name_prefix="acme",
        skills_poll_interval="30",
    )
    runtime = CsghubRuntime(configured)
    spec = pvc_spec()
    spec.mounts[1].read_only = True

    body = runtime.create_body(spec, runtime.sandbox_name(spec.name))

    assert list(body) == [
        "image", "cluster_id", "resource_id", "sandbox_name", "environments", "volumes", "port", "timeout",
    ]  # fmt: skip
    assert (body["cluster_id"], body["resource_id"], body["port"], body["timeout"]) == ("c1", 7, 8080, 0)
    assert body["sandbox_name"] == "acme-alice"
    assert body["environments"]["SKILLS_POLL_INTERVAL"] == "30"
    assert body["volumes"][0]["sandbox_mount_subpath"] == "team/home/agents/alice/workspace"
    assert body["volumes"][1]["read_only"] is True
    assert "read_only" not in body["volumes"][0]
    assert runtime.sandbox_name("acme-alice") == "acme-alice"


@pytest.mark.usefixtures("provider_in_server_env")
def test_the_sandbox_gets_every_section_6_2_variable_and_only_the_hub_variables_besides(
    hub: respx.MockRouter,
) -> None:
    runtime = CsghubRuntime(settings(skills_poll_interval="30"))
    create = hub.post(SANDBOXES).respond(201, json=sandbox("created", "worker-1"))
    hub.put(f"{SANDBOXES}/worker-1/status/start").respond(200, json={})
    hub.get(f"{SANDBOXES}/worker-1").respond(200, json=sandbox("running", "worker-1"))
    hub.get(f"{GATEWAY}/v1/sandboxes/worker-1/").respond(200)

    runtime.create(agent_spec(Path("/opt/csgclaw/home"), slug="worker-1", agent_id="u-worker-1"))
    runtime.close()

    handed = json.loads(create.calls[0].request.content)["environments"]
    assert example_environment_mismatches(handed) == {}
    assert provider_secrets_in(handed) == []
    hub_variables = {
        "CSGHUB_API_BASE_URL": API,
        "CSGHUB_USER_TOKEN": "hub-token",
        "SKILLS_POLL_INTERVAL": "30",
    }
    assert {key: handed[key] for key in handed.keys() - EXAMPLE_ENVIRONMENT.keys()} == hub_variables


@pytest.mark.parametrize(
    "host_path", ["/srv/csgclaw/projects", "/opt/csgclaw", "/opt/csgclaw/../etc", "relative/x"]
)
def test_mounts_must_live_under_the_pvc(host_path: str, runtime: CsghubRuntime) -> None:
    spec = pvc_spec()
    spec.mounts = [Mount(host_path, "/x")]

    with pytest.raises(
        SandboxError, match=r'^csghub: mount host path ".*" is not under CSGCLAW_PVC_MOUNT_PATH'
    ):
        runtime.create_body(spec, "alice")


def test_conflict_patches_then_reads_and_skips_start_when_running(
    hub: respx.MockRouter, runtime: CsghubRuntime
) -> None:
    hub.post(SANDBOXES).respond(409, json={"msg": "exists"})
    patch = hub.patch(f"{SANDBOXES}/alice").respond(200, json={})
    get = hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running", wrap=True))
    start = hub.put(f"{SANDBOXES}/alice/status/start").respond(200)
    hub.get(f"{GATEWAY}/v1/sandboxes/alice/").respond(200)

    runtime.create(pvc_spec())

    assert json.loads(patch.calls[0].request.content)["sandbox_name"] == "alice"
    assert get.call_count == 2
    assert start.call_count == 0


def test_start_400_while_deploying_is_tolerated(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.post(SANDBOXES).respond(201, json=sandbox("deploying"))
    hub.put(f"{SANDBOXES}/alice/status/start").respond(400, json={"msg": "sandbox is deploying"})
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))
    hub.get(f"{GATEWAY}/v1/sandboxes/alice/").respond(200)

    runtime.create(pvc_spec())


def test_start_400_otherwise_fails(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.post(SANDBOXES).respond(201, json=sandbox("stopped"))
    hub.put(f"{SANDBOXES}/alice/status/start").respond(400, text="quota exceeded")

    with pytest.raises(SandboxError) as raised:
        runtime.create(pvc_spec())

    assert str(raised.value) == "start csghub sandbox: HTTP 400: quota exceeded"


@pytest.mark.parametrize("status_code", [401, 403])
def test_unauthorized_aborts_at_once(status_code: int, hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    create = hub.post(SANDBOXES).respond(status_code, text="bad token")

    with pytest.raises(SandboxError) as raised:
        runtime.create(pvc_spec())

    assert str(raised.value) == (
        f"create csghub sandbox: unauthorized (HTTP {status_code}); check CSGHUB_USER_TOKEN: bad token"
    )
    assert create.call_count == 1


def test_unauthorized_while_polling_aborts_at_once(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.post(SANDBOXES).respond(201, json=sandbox("deploying"))
    hub.put(f"{SANDBOXES}/alice/status/start").respond(200)
    polls = hub.get(f"{SANDBOXES}/alice").respond(401)

    with pytest.raises(SandboxError, match=r"^poll csghub sandbox: unauthorized \(HTTP 401\)"):
        runtime.create(pvc_spec())

    assert polls.call_count == 1


def test_deadline_names_the_last_status(hub: respx.MockRouter) -> None:
    runtime = CsghubRuntime(settings(ready_timeout=0.05))
    hub.post(SANDBOXES).respond(201, json=sandbox("deploying"))
    hub.put(f"{SANDBOXES}/alice/status/start").respond(200)
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("pending"))

    with pytest.raises(SandboxError) as raised:
        runtime.create(pvc_spec())

    assert (
        str(raised.value)
        == 'wait for csghub sandbox "alice" to run: not running after 0.05 s (last status "pending")'
    )


def test_gateway_deadline_names_the_last_answer(hub: respx.MockRouter) -> None:
    runtime = CsghubRuntime(settings(ready_timeout=0.05))
    hub.post(SANDBOXES).respond(201, json=sandbox("running"))
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))
    hub.get(f"{GATEWAY}/v1/sandboxes/alice/").respond(503)

    with pytest.raises(SandboxError) as raised:
        runtime.create(pvc_spec())

    assert (
        str(raised.value)
        == 'wait for csghub sandbox "alice" gateway: not ready after 0.05 s (last status HTTP 503)'
    )


def test_failed_status_stops_the_wait(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.post(SANDBOXES).respond(201, json=sandbox("deploying"))
    hub.put(f"{SANDBOXES}/alice/status/start").respond(200)
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("Failed"))

    with pytest.raises(
        SandboxError, match=r'^start csghub sandbox "alice": the service reports status "Failed"$'
    ):
        runtime.create(pvc_spec())


def test_get_and_info_unwrap_data(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("ready", wrap=True))

    info = runtime.get("alice").info()

    assert (info.id, info.name, info.state) == ("alice", "alice", "running")
    assert info.created_at == datetime(2026, 4, 24, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("running", "running"),
        ("ready", "running"),
        ("deploying", "created"),
        ("starting", "created"),
        ("creating", "created"),
        ("created", "created"),
        ("configured", "created"),
        ("pending", "created"),
        ("stopped", "stopped"),
        ("terminated", "stopped"),
        ("failed", "exited"),
        ("error", "exited"),
        ("errored", "exited"),
        ("crashed", "exited"),
        ("dead", "exited"),
        ("exited", "exited"),
        ("sleeping", "unknown"),
    ],
)
def test_state_mapping(status: str, state: str, hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox(status))

    assert runtime.get("alice").info().state == state


def test_missing_sandbox_is_not_found(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/ghost").respond(404, json={"msg": "not found"})

    with pytest.raises(BoxNotFound, match=r"^get csghub sandbox: sandbox not found: ghost$"):
        runtime.get("ghost")


def test_garbage_answer_is_a_readable_error(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, text="<html>maintenance</html>")

    with pytest.raises(SandboxError, match=r"^get csghub sandbox: unexpected response \(not JSON\): <html>"):
        runtime.get("alice")


def test_unreachable_service_is_unavailable(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").mock(side_effect=httpx.ConnectError("connection refused"))

    with pytest.raises(SandboxUnavailable, match=r"^get csghub sandbox: connection refused$"):
        runtime.get("alice")


# Every way the provider reaches the service, with the operation name its errors start with.
SERVICE_CALLS = [
    pytest.param("create csghub sandbox", lambda runtime: runtime.create(pvc_spec()), id="create"),
    pytest.param("get csghub sandbox", lambda runtime: runtime.get("alice"), id="get"),
    pytest.param("remove csghub sandbox", lambda runtime: runtime.remove("alice"), id="remove"),
    pytest.param("get csghub sandbox", lambda runtime: CsghubBox(runtime, "alice").start(), id="start"),
    pytest.param("stop csghub sandbox", lambda runtime: CsghubBox(runtime, "alice").stop(), id="stop"),
    pytest.param("get csghub sandbox", lambda runtime: CsghubBox(runtime, "alice").info(), id="info"),
    pytest.param("run csghub command", lambda runtime: CsghubBox(runtime, "alice").logs(5), id="exec"),
]


@pytest.mark.parametrize(("op", "call"), SERVICE_CALLS)
def test_a_base_url_httpx_cannot_parse_is_a_sandbox_error(
    op: str, call: Callable[[CsghubRuntime], object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSGHUB_API_BASE_URL", "http://[::1")
    monkeypatch.setenv("CSGHUB_USER_TOKEN", "t")
    monkeypatch.delenv("CSGHUB_AIGATEWAY_URL", raising=False)
    runtime = CsghubProvider(sandbox_config(provider="csghub")).open(tmp_path)

    with pytest.raises(SandboxError) as raised:
        call(runtime)

    # Not SandboxUnavailable: waiting cannot repair a URL, so no readiness loop keeps retrying it.
    assert type(raised.value) is SandboxError
    assert str(raised.value) == f"{op}: Invalid port: ':1'"


@pytest.mark.parametrize(("op", "call"), SERVICE_CALLS)
def test_a_token_that_cannot_be_a_header_is_a_sandbox_error(
    op: str, call: Callable[[CsghubRuntime], object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSGHUB_API_BASE_URL", API)
    monkeypatch.setenv("CSGHUB_USER_TOKEN", "tök")
    runtime = CsghubProvider(sandbox_config(provider="csghub")).open(tmp_path)

    with pytest.raises(SandboxError, match=rf"^{op}: 'ascii' codec can't encode character"):
        call(runtime)


def test_a_host_the_transport_cannot_encode_is_a_sandbox_error(
    hub: respx.MockRouter, runtime: CsghubRuntime
) -> None:
    label_too_long = UnicodeError("encoding with 'idna' codec failed (UnicodeError: label too long)")
    hub.get(f"{SANDBOXES}/alice").mock(side_effect=label_too_long)
    hub.post(f"{GATEWAY}/v1/sandboxes/alice/execute").mock(side_effect=label_too_long)

    with pytest.raises(SandboxError, match=r"^get csghub sandbox: encoding with 'idna' codec failed"):
        runtime.get("alice")
    with pytest.raises(SandboxError, match=r"^run csghub command: encoding with 'idna' codec failed"):
        CsghubBox(runtime, "alice").exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO())


def test_an_unusable_gateway_url_ends_the_readiness_wait_at_once(hub: respx.MockRouter) -> None:
    runtime = CsghubRuntime(settings(gateway_url="http://[::1", ready_timeout=60.0))
    hub.post(SANDBOXES).respond(201, json=sandbox("running"))
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))

    with pytest.raises(SandboxError) as raised:
        runtime.create(pvc_spec())

    assert str(raised.value) == "wait for csghub sandbox gateway: Invalid port: ':1'"


def test_an_answer_nested_too_deep_is_a_readable_error(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, text="[" * 100_000)

    with pytest.raises(SandboxError, match=r"^get csghub sandbox: unexpected response \(not JSON\): \[\[\["):
        runtime.get("alice")


def test_start_stop_and_remove(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").mock(
        side_effect=[
            httpx.Response(200, json=sandbox("stopped")),
            httpx.Response(200, json=sandbox("stopped")),
            httpx.Response(200, json=sandbox("running")),
        ]
    )
    start = hub.put(f"{SANDBOXES}/alice/status/start").respond(200)
    stop = hub.put(f"{SANDBOXES}/alice/status/stop").respond(200)
    hub.get(f"{GATEWAY}/v1/sandboxes/alice/").respond(200)
    box = runtime.get("alice")

    box.start()
    box.stop()
    runtime.remove("alice", force=True)

    assert (start.call_count, stop.call_count) == (1, 2)


def test_remove_of_a_missing_sandbox_is_not_found(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.put(f"{SANDBOXES}/ghost/status/stop").respond(404)

    with pytest.raises(BoxNotFound, match=r"^remove csghub sandbox: sandbox not found: ghost$"):
        runtime.remove("ghost")


def test_exec_streams_lines_and_error_lines_mean_exit_1(
    hub: respx.MockRouter, runtime: CsghubRuntime
) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))
    execute = hub.post(f"{GATEWAY}/v1/sandboxes/alice/execute", params={"port": "8888"}).mock(
        side_effect=[
            httpx.Response(200, text="line 1\nline 2\n"),
            httpx.Response(200, text="partial\nERROR: tail: cannot open 'x'\n"),
        ]
    )
    box = runtime.get("alice")
    stdout = io.BytesIO()

    assert box.exec(["tail", "-n", "5", "/home/picoclaw/it's.log"], stdout=stdout, stderr=io.BytesIO()) == 0
    assert stdout.getvalue() == b"line 1\nline 2\n"
    assert json.loads(execute.calls[0].request.content) == {
        "command": "tail -n 5 '/home/picoclaw/it'\"'\"'s.log'"
    }
    assert box.exec(["tail", "x"], stdout=io.BytesIO(), stderr=io.BytesIO()) == 1


def test_logs_through_exec(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))
    execute = hub.post(f"{GATEWAY}/v1/sandboxes/alice/execute").respond(200, text="gateway up\n")

    assert runtime.get("alice").logs(3) == "gateway up\n"
    assert json.loads(execute.calls[0].request.content) == {
        "command": "tail -n 3 /home/picoclaw/.picoclaw/gateway.log"
    }


def test_exec_http_errors(hub: respx.MockRouter, runtime: CsghubRuntime) -> None:
    hub.get(f"{SANDBOXES}/alice").respond(200, json=sandbox("running"))
    hub.post(f"{GATEWAY}/v1/sandboxes/alice/execute").mock(
        side_effect=[httpx.Response(404), httpx.Response(500, text="boom")]
    )
    box = runtime.get("alice")

    with pytest.raises(BoxNotFound, match=r"^run csghub command: sandbox not found: alice$"):
        box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO())
    with pytest.raises(SandboxError, match=r"^run csghub command: HTTP 500: boom$"):
        box.exec(["true"], stdout=io.BytesIO(), stderr=io.BytesIO())
