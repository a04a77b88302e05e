"""Reading the CSGHub sandbox service's HTTP answers: records out of responses, failures as SandboxError."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from sandbox.providers.base import SandboxError, SandboxUnavailable
from sandbox.providers.commands import nested, snippet


def sandbox_record(response: httpx.Response, op: str) -> dict[str, Any]:
    """The sandbox object of a response, which the service sometimes wraps in `{"data": …}`."""
    try:
        payload = response.json()
    except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than the parser goes
        raise SandboxError(f"{op}: unexpected response (not JSON): {snippet(response.text)}") from error
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    if not isinstance(payload, dict):
        raise SandboxError(f"{op}: unexpected response (not a JSON object): {snippet(response.text)}")
    return payload


def sandbox_status(record: Mapping[str, Any]) -> str:
    status = nested(dict(record), "state", "status")
    return status.strip() if isinstance(status, str) else ""


def http_failure(op: str, response: httpx.Response) -> SandboxError:
    return SandboxError(
        f"{op}: HTTP {response.status_code}: {snippet(response.text) or response.reason_phrase}"
    )


def unauthorized(op: str, response: httpx.Response) -> SandboxError:
    detail = snippet(response.text)
    return SandboxError(
        f"{op}: unauthorized (HTTP {response.status_code}); check CSGHUB_USER_TOKEN"
        + (f": {detail}" if detail else "")
    )


@contextmanager
def service_call(op: str) -> Iterator[None]:
    """httpx failures as the provider's errors, named after the operation.

    An unreachable service is SandboxUnavailable. A request httpx cannot build or send at all (a URL it
    cannot parse, a host or header value it cannot encode) is a plain SandboxError: waiting cannot repair
    it, so the readiness loops, which keep retrying SandboxUnavailable, give up at once.
    """
    try:
        yield
    except httpx.HTTPError as error:
        raise SandboxUnavailable(f"{op}: {error}") from error
    except (httpx.InvalidURL, ValueError) as error:
        raise SandboxError(f"{op}: {error}") from error
