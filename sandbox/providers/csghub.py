"""The csghub provider: sandboxes run by a CSGHub sandbox service, driven over its HTTP API with httpx."""

from __future__ import annotations

import os
import posixpath
import shlex
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from sandbox.boxspec import merge_box_environment
from sandbox.providers.base import (
    BoxInfo,
    BoxNotFound,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    TailLogsMixin,
    map_state,
    parse_timestamp,
)
from sandbox.providers.commands import nested
from sandbox.providers.csghub_http import (
    http_failure,
    sandbox_record,
    sandbox_status,
    service_call,
    unauthorized,
)
from sandbox.providers.csghub_settings import CsghubSettings

if TYPE_CHECKING:
    from core.config import SandboxConfig

SANDBOXES_PATH = "/api/v1/sandboxes"
# The port PicoClaw's runtime listens on inside a CSGHub sandbox; the gateway proxies to it.
RUNTIME_PORT = 8888
LIFECYCLE_TIMEOUT = 60.0
EXEC_TIMEOUT = 30 * 60.0
# One readiness probe must not eat the whole wait; the gateway answers quickly once the runtime is up.
GATEWAY_PROBE_TIMEOUT = 5.0

CSGHUB_STATES: dict[str, BoxState] = {
    "running": "running",
    "ready": "running",
    "deploying": "created",
    "starting": "created",
    "creating": "created",
    "created": "created",
    "configured": "created",
    "pending": "created",
    "stopped": "stopped",
    "terminated": "stopped",
    "failed": "exited",
    "error": "exited",
    "errored": "exited",
    "crashed": "exited",
    "dead": "exited",
    "exited": "exited",
}
# Statuses that will not turn into "running" by waiting; "stopped" is not one, it is stale right after start.
FAILED_STATUSES = {"failed", "error", "errored", "crashed"}
# While the service is still bringing a sandbox up it answers a start request with 400.
STARTING_STATUSES = ("deploying", "starting")


class CsghubProvider:
    name = "csghub"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.sandbox_config = sandbox_config

    def open(self, home_dir: Path) -> CsghubRuntime:
        """The runtime home is unused: sandboxes and their state live in the CSGHub service."""
        return CsghubRuntime(CsghubSettings.from_environ(os.environ))


class CsghubRuntime:
    def __init__(self, settings: CsghubSettings) -> None:
        self.settings = settings
        # Sent with each request rather than set on the client: a token httpx cannot encode then fails
        # that request, inside service_call, instead of the constructor.
        self.headers = {"Authorization": f"Bearer {settings.user_token}"}
        self.client = httpx.Client(timeout=LIFECYCLE_TIMEOUT)

    def sandbox_name(self, name: str) -> str:
        prefix = self.settings.name_prefix
        if not prefix or name.startswith(f"{prefix}-"):
            return name
        return f"{prefix}-{name}"

    def api_url(self, *parts: str) -> str:
        return "/".join(
            [self.settings.api_base_url + SANDBOXES_PATH, *(quote(part, safe="/") for part in parts)]
        )

    def gateway_url(self, name: str, action: str = "") -> str:
        return f"{self.settings.gateway_url}/v1/sandboxes/{quote(name, safe='')}/{action}"

    def request(
        self, op: str, method: str, url: str, *, timeout: float = LIFECYCLE_TIMEOUT, **kwargs: Any
    ) -> httpx.Response:
        """One HTTP call; credentials the service refuses abort at once, whatever the caller is doing."""
        with service_call(op):
            response = self.client.request(method, url, headers=self.headers, timeout=timeout, **kwargs)
        if response.status_code in (401, 403):
            raise unauthorized(op, response)
        return response

    def create_body(self, spec: BoxSpec, name: str) -> dict[str, Any]:
        if not spec.image.strip():
            raise SandboxError("invalid sandbox image: image is required")
        if spec.entrypoint:
            raise SandboxError("unsupported sandbox option: entrypoint")
        settings = self.settings
        hub_variables = {
            "CSGHUB_API_BASE_URL": settings.api_base_url,
            "CSGHUB_USER_TOKEN": settings.user_token,
        }
        if settings.skills_poll_interval is not None:
            hub_variables["SKILLS_POLL_INTERVAL"] = settings.skills_poll_interval
        environments = merge_box_environment(spec.env, hub_variables)
        body: dict[str, Any] = {"image": spec.image}
        if settings.cluster_id:
            body["cluster_id"] = settings.cluster_id
        if settings.resource_id is not None:
            body["resource_id"] = settings.resource_id
        body["sandbox_name"] = name
        body["environments"] = environments
        body["volumes"] = [
            self.volume(mount.host_path, mount.guest_path, mount.read_only) for mount in spec.mounts
        ]
        if settings.sandbox_port is not None:
            body["port"] = settings.sandbox_port
        if settings.sandbox_timeout is not None:
            body["timeout"] = settings.sandbox_timeout
        return body

    def volume(self, host_path: str, guest_path: str, read_only: bool) -> dict[str, Any]:
        """A mount as a sub-path of the PVC that the server and the sandboxes share."""
        if not host_path.strip():
            raise SandboxError("invalid sandbox mount: host path is required")
        if not guest_path.strip():
            raise SandboxError("invalid sandbox mount: guest path is required")
        root = posixpath.normpath(self.settings.pvc_mount_path)
        relative = posixpath.relpath(posixpath.normpath(host_path), root)
        if not host_path.startswith("/") or relative == "." or relative == ".." or relative.startswith("../"):
            raise SandboxError(
                f'csghub: mount host path "{host_path}" is not under CSGCLAW_PVC_MOUNT_PATH "{root}"'
            )
        prefix = self.settings.pvc_subpath_prefix
        volume: dict[str, Any] = {
            "sandbox_mount_subpath": posixpath.join(prefix, relative) if prefix else relative,
            "sandbox_mount_path": guest_path,
        }
        if read_only:
            volume["read_only"] = True
        return volume

    def create(self, spec: BoxSpec) -> CsghubBox:
        name = self.sandbox_name(spec.name)
        body = self.create_body(spec, name)
        op = "create csghub sandbox"
        response = self.request(op, "POST", self.api_url(), json=body)
        if response.status_code == 409:
            # It exists already (an earlier attempt, another server): bring it to this spec instead.
            response = self.request("update csghub sandbox", "PATCH", self.api_url(name), json=body)
            if not response.is_success:
                raise http_failure("update csghub sandbox", response)
            status = sandbox_status(self.fetch(name, op="get csghub sandbox"))
        elif response.is_success:
            status = self.reported_status(response, op)
        else:
            raise http_failure(op, response)
        self.bring_up(name, status)
        return CsghubBox(self, name)

    @staticmethod
    def reported_status(response: httpx.Response, op: str) -> str:
        """The status a successful create answered with; the sandbox exists, so an odd body is no failure."""
        try:
            return sandbox_status(sandbox_record(response, op))
        except SandboxError:
            return ""

    def bring_up(self, name: str, status: str) -> None:
        """Start the sandbox unless it runs, then wait until it runs and its gateway answers."""
        if map_state(status, CSGHUB_STATES) != "running":
            op = "start csghub sandbox"
            response = self.request(op, "PUT", self.api_url(name, "status/start"))
            if response.status_code == 404:
                raise BoxNotFound(f"{op}: sandbox not found: {name}")
            starting = status.lower() in STARTING_STATUSES or any(
                word in response.text.lower() for word in STARTING_STATUSES
            )
            if not response.is_success and not (response.status_code == 400 and starting):
                raise http_failure(op, response)
        deadline = time.monotonic() + self.settings.ready_timeout
        self.wait_running(name, deadline, status)
        self.wait_gateway(name, deadline)

    def wait_running(self, name: str, deadline: float, status: str) -> None:
        last = status or "unknown"
        while True:
            try:
                last = sandbox_status(self.fetch(name, op="poll csghub sandbox")) or "unknown"
            except (SandboxUnavailable, BoxNotFound) as error:
                # The service may not list a sandbox it has just accepted; keep asking until the deadline.
                last = str(error)
            else:
                if map_state(last, CSGHUB_STATES) == "running":
                    return
                if last.lower() in FAILED_STATUSES:
                    raise SandboxError(f'start csghub sandbox "{name}": the service reports status "{last}"')
            self.pause_until(
                deadline,
                f'wait for csghub sandbox "{name}" to run: not running after '
                f'{self.settings.ready_timeout:g} s (last status "{last}")',
            )

    def wait_gateway(self, name: str, deadline: float) -> None:
        last = "no answer"
        while True:
            probe_timeout = max(0.1, min(GATEWAY_PROBE_TIMEOUT, deadline - time.monotonic()))
            try:
                response = self.request(
                    "wait for csghub sandbox gateway",
                    "GET",
                    self.gateway_url(name),
                    params={"port": RUNTIME_PORT},
                    timeout=probe_timeout,
                )
            except SandboxUnavailable as error:
                last = str(error)
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            self.pause_until(
                deadline,
                f'wait for csghub sandbox "{name}" gateway: not ready after '
                f"{self.settings.ready_timeout:g} s (last status {last})",
            )

    def pause_until(self, deadline: float, timeout_message: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SandboxError(timeout_message)
        time.sleep(min(self.settings.poll_interval, remaining))

    def fetch(self, name: str, *, op: str) -> dict[str, Any]:
        response = self.request(op, "GET", self.api_url(name))
        if response.status_code == 404:
            raise BoxNotFound(f"{op}: sandbox not found: {name}")
        if not response.is_success:
            raise http_failure(op, response)
        return sandbox_record(response, op)

    def set_status(self, name: str, action: str, *, op: str) -> None:
        response = self.request(op, "PUT", self.api_url(name, f"status/{action}"))
        if response.status_code == 404:
            raise BoxNotFound(f"{op}: sandbox not found: {name}")
        if not response.is_success:
            raise http_failure(op, response)

    def get(self, id_or_name: str) -> CsghubBox:
        name = self.sandbox_name(id_or_name)
        record = self.fetch(name, op="get csghub sandbox")
        return CsghubBox(self, str(nested(record, "spec", "sandbox_name") or name))

    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        """The service has no delete: removing a box stops it."""
        self.set_status(self.sandbox_name(id_or_name), "stop", op="remove csghub sandbox")

    def close(self) -> None:
        self.client.close()


class CsghubBox(TailLogsMixin):
    def __init__(self, runtime: CsghubRuntime, name: str) -> None:
        self.runtime = runtime
        self.name = name

    def start(self) -> None:
        record = self.runtime.fetch(self.name, op="get csghub sandbox")
        self.runtime.bring_up(self.name, sandbox_status(record))

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        """The service has one way to stop a sandbox, so `force` and `timeout` change nothing."""
        self.runtime.set_status(self.name, "stop", op="stop csghub sandbox")

    def info(self) -> BoxInfo:
        record = self.runtime.fetch(self.name, op="get csghub sandbox")
        name = str(nested(record, "spec", "sandbox_name") or self.name)
        return BoxInfo(
            id=name,
            name=name,
            state=map_state(sandbox_status(record), CSGHUB_STATES),
            created_at=parse_timestamp(nested(record, "state", "created_at")),
        )

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        """Output streams back line by line; the service has no exit codes, so an `ERROR:` line means 1."""
        op = "run csghub command"
        exit_code = 0
        with (
            service_call(op),
            self.runtime.client.stream(
                "POST",
                self.runtime.gateway_url(self.name, "execute"),
                headers=self.runtime.headers,
                params={"port": RUNTIME_PORT},
                json={"command": shlex.join(argv)},
                timeout=timeout or EXEC_TIMEOUT,
            ) as response,
        ):
            if response.status_code in (401, 403):
                response.read()
                raise unauthorized(op, response)
            if response.status_code == 404:
                raise BoxNotFound(f"{op}: sandbox not found: {self.name}")
            if not response.is_success:
                response.read()
                raise http_failure(op, response)
            for line in response.iter_lines():
                stdout.write(line.encode("utf-8") + b"\n")
                if line.startswith("ERROR:"):
                    exit_code = 1
        return exit_code

    def close(self) -> None:
        """The handle is just a name; the runtime owns the HTTP client."""
