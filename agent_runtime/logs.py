"""The gateway log format (builtin-runtime.md §7.1): `<UTC ms>Z LEVEL [component] message`, tokens masked."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from agent_runtime.contracts import utc_iso

ROOT_LOGGER = "agent_runtime"
_LEVEL_NAMES = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# Libraries that log every request at INFO; their lines would drown the runtime's own.
_QUIET_LOGGERS = ("httpx", "httpcore", "asyncio")


class GatewayFormatter(logging.Formatter):
    """One line per record (tracebacks follow it); any configured secret is replaced by `***`."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        component = record.name.rsplit(".", 1)[-1]
        line = f"{utc_iso(record.created)} {level:<5} [{component}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line


def setup_logging(
    *, debug: bool, secrets: tuple[str, ...] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Route every record to `stream` (stdout; the launcher sends it to gateway.log) in the gateway format."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(GatewayFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
