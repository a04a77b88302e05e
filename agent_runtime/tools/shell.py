"""The `exec` tool: one shell command in its own process group, behind PicoClaw's deny patterns (§5.2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from functools import lru_cache
from typing import Any

from agent_runtime.contracts import Settings
from agent_runtime.tools.files import confine

# PicoClaw `defaultDenyPatterns` (Unix), matched against the lower-cased command.
DEFAULT_DENY_PATTERNS = (
    r"\brm\s+-[rf]{1,2}\b",
    r"\bdel\s+/[fq]\b",
    r"\brmdir\s+/s\b",
    r"(^|[^-\w])\b(format|mkfs|diskpart)\b\s",
    r"\bdd\s+if=",
    r">\s*/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|loop\d|dm-\d|md\d|sr\d|nbd\d)",
    r"\b(shutdown|reboot|poweroff)\b",
    r":\(\)\s*\{.*\};\s*:",
    r"\$\([^)]+\)",
    r"\$\{[^}]+\}",
    r"`[^`]+`",
    r"\|\s*sh\b",
    r"\|\s*bash\b",
    r";\s*rm\s+-[rf]",
    r"&&\s*rm\s+-[rf]",
    r"\|\|\s*rm\s+-[rf]",
    r"<<\s*EOF",
    r"\$\(\s*cat\s+",
    r"\$\(\s*curl\s+",
    r"\$\(\s*wget\s+",
    r"\$\(\s*which\s+",
    r"\bsudo\b",
    r"\bchmod\s+[0-7]{3,4}\b",
    r"\bchown\b",
    r"\bpkill\b",
    r"\bkillall\b",
    r"\bkill\b",
    r"\bcurl\b.*\|\s*(sh|bash)",
    r"\bwget\b.*\|\s*(sh|bash)",
    r"\bnpm\s+install\s+-g\b",
    r"\bpip\s+install\s+--user\b",
    r"\bapt\s+(install|remove|purge)\b",
    r"\byum\s+(install|remove)\b",
    r"\bdnf\s+(install|remove)\b",
    r"\bdocker\s+run\b",
    r"\bdocker\s+exec\b",
    r"\bgit\s+push\b",
    r"\bgit\s+force\b",
    r"\bssh\b.*@",
    r"\beval\b",
    r"\bsource\s+.*\.sh\b",
)
BLOCKED = "Error: Command blocked by safety guard (dangerous pattern detected)"
MAX_STREAM_BYTES = 1024 * 1024
MAX_OUTPUT_CHARS = 10_000
# SIGTERM first so the command can clean up; SIGKILL after this grace (PicoClaw `runSync`).
KILL_GRACE_SECONDS = 2.0


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error:
            continue
    return tuple(compiled)


def is_blocked(settings: Settings, command: str) -> bool:
    lowered = command.lower()
    if any(p.search(lowered) for p in _compiled(settings.custom_allow_patterns)):
        return False
    deny = settings.custom_deny_patterns
    if settings.enable_deny_patterns:
        deny = DEFAULT_DENY_PATTERNS + deny
    return any(p.search(lowered) for p in _compiled(deny))


async def _drain(stream: asyncio.StreamReader, sink: bytearray) -> None:
    while chunk := await stream.read(65536):
        room = MAX_STREAM_BYTES - len(sink)
        if room > 0:
            sink.extend(chunk[:room])


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _format(stdout: bytearray, stderr: bytearray) -> str:
    text = stdout.decode("utf-8", errors="replace")
    if stderr:
        text += "\nSTDERR:\n" + stderr.decode("utf-8", errors="replace")
    return text


def _cut(text: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        return text[:MAX_OUTPUT_CHARS] + f"\n... (truncated, {len(text) - MAX_OUTPUT_CHARS} more chars)"
    return text


async def exec_command(settings: Settings, args: dict[str, Any]) -> str:
    command = args["command"]
    if is_blocked(settings, command):
        return BLOCKED
    cwd = confine(settings, args["cwd"]) if args.get("cwd") else str(settings.workspace)
    if not os.path.isdir(cwd):
        return f"Error: working directory does not exist: {args.get('cwd') or cwd}"
    timeout = args.get("timeout") or settings.exec_timeout_seconds
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
    )
    stdout, stderr = bytearray(), bytearray()
    readers = asyncio.gather(_drain(process.stdout, stdout), _drain(process.stderr, stderr))
    try:
        async with asyncio.timeout(timeout):
            await readers
            code = await process.wait()
    except TimeoutError:
        await _stop_group(process, readers)
        partial = _format(stdout, stderr)
        return _cut(f"Command timed out after {timeout}s\n\nPartial output before timeout:\n{partial}")
    except asyncio.CancelledError:
        await asyncio.shield(_stop_group(process, readers))
        raise
    text = _format(stdout, stderr)
    if code != 0:
        text += f"\n\n[Command exited with code {code}]"
    return _cut(text) if text else "(no output)"


async def _stop_group(process: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
    # Grandchildren may still hold the pipes open; they were in the group and got the same signals.
    _signal_group(process.pid, signal.SIGKILL)
    readers.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await readers
