"""The csghub provider's settings, parsed from CSGHUB_*, CSGCLAW_* and SKILLS_POLL_INTERVAL variables."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.providers.base import SandboxError, SandboxUnavailable

DEFAULT_READY_TIMEOUT = 5 * 60.0
MIN_READY_TIMEOUT = 5.0
DEFAULT_POLL_INTERVAL = 3.0
MIN_POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 30.0
DEFAULT_PVC_MOUNT_PATH = "/opt/csgclaw"

# ASCII digits only: float() and int() would also take "nan", "inf", "1e3", "1_000" and non-ASCII digits.
_DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SECONDS = re.compile(_DECIMAL)
_DURATION_PART = re.compile(rf"({_DECIMAL})(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_duration(name: str, raw: str) -> float:
    """Seconds from `90`, `90s`, `1m30s` or `500ms` (Go duration syntax, one optional leading sign)."""
    raw = raw.strip()
    invalid = SandboxError(f"{name} must be a duration such as 90s or a number of seconds: {raw}")
    negative = raw.startswith("-")
    magnitude = raw[1:] if raw[:1] in ("+", "-") else raw
    if _SECONDS.fullmatch(magnitude):
        seconds = float(magnitude)
    else:
        seconds = 0.0
        position = 0
        for part in _DURATION_PART.finditer(magnitude):
            if part.start() != position:
                break
            seconds += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
            position = part.end()
        if position == 0 or position != len(magnitude):
            raise invalid
    # Enough digits overflow float() to inf, which would make the readiness wait endless.
    if not math.isfinite(seconds):
        raise invalid
    if negative and seconds > 0:
        raise SandboxError(f"{name} must be >= 0")
    return seconds


def parse_count(name: str, raw: str) -> int:
    raw = raw.strip()
    invalid = SandboxError(f"{name} must be an integer: {raw}")
    if not _INTEGER.fullmatch(raw):
        raise invalid
    try:
        value = int(raw)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise invalid from None
    if value < 0:
        raise SandboxError(f"{name} must be >= 0")
    return value


def normalize_subpath_prefix(raw: str) -> str:
    prefix = raw.strip().strip("/")
    if not prefix:
        return ""
    if ".." in prefix.split("/"):
        raise SandboxError('csghub: CSGCLAW_PVC_SUBPATH_PREFIX must not contain ".."')
    normalized = posixpath.normpath(prefix)
    return "" if normalized == "." else normalized


@dataclass(frozen=True)
class CsghubSettings:
    """The provider's configuration; it comes from the environment only."""

    api_base_url: str
    user_token: str
    gateway_url: str
    cluster_id: str = ""
    resource_id: int | None = None
    sandbox_port: int | None = None
    sandbox_timeout: int | None = None
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    pvc_mount_path: str = DEFAULT_PVC_MOUNT_PATH
    pvc_subpath_prefix: str = ""
    name_prefix: str = ""
    skills_poll_interval: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> CsghubSettings:
        def value(name: str) -> str:
            return environ.get(name, "").strip()

        def count(name: str) -> int | None:
            return parse_count(name, value(name)) if value(name) else None

        api_base_url = value("CSGHUB_API_BASE_URL").rstrip("/")
        if not api_base_url:
            raise SandboxUnavailable("csghub: CSGHUB_API_BASE_URL is required")
        user_token = value("CSGHUB_USER_TOKEN")
        if not user_token:
            raise SandboxUnavailable("csghub: CSGHUB_USER_TOKEN is required")
        ready_timeout = DEFAULT_READY_TIMEOUT
        if value("CSGCLAW_SANDBOX_READY_TIMEOUT"):
            ready_timeout = parse_duration(
                "CSGCLAW_SANDBOX_READY_TIMEOUT", value("CSGCLAW_SANDBOX_READY_TIMEOUT")
            )
        poll_interval = DEFAULT_POLL_INTERVAL
        if value("CSGCLAW_SANDBOX_POLL_INTERVAL"):
            poll_interval = parse_duration(
                "CSGCLAW_SANDBOX_POLL_INTERVAL", value("CSGCLAW_SANDBOX_POLL_INTERVAL")
            )
        return cls(
            api_base_url=api_base_url,
            user_token=user_token,
            gateway_url=value("CSGHUB_AIGATEWAY_URL").rstrip("/") or api_base_url,
            cluster_id=value("CSGCLAW_CLUSTER_ID"),
            resource_id=count("CSGCLAW_RESOURCE_ID"),
            sandbox_port=count("CSGCLAW_SANDBOX_PORT"),
            sandbox_timeout=count("CSGCLAW_SANDBOX_TIMEOUT"),
            ready_timeout=max(ready_timeout, MIN_READY_TIMEOUT),
            poll_interval=min(max(poll_interval, MIN_POLL_INTERVAL), MAX_POLL_INTERVAL),
            pvc_mount_path=value("CSGCLAW_PVC_MOUNT_PATH") or DEFAULT_PVC_MOUNT_PATH,
            pvc_subpath_prefix=normalize_subpath_prefix(value("CSGCLAW_PVC_SUBPATH_PREFIX")),
            name_prefix=value("CSGCLAW_NAME"),
            skills_poll_interval=environ.get("SKILLS_POLL_INTERVAL"),
        )
