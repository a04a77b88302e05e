"""Running a runtime's command-line tool (boxlite, docker) and reading its JSON answers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from sandbox.providers.base import BoxNotFound, SandboxError, SandboxUnavailable

# Enough of a runtime's unexpected output to recognise it in a status line without flooding it.
SNIPPET_LENGTH = 200
# Variables the CLI itself reads: a box value for one of these goes on the command line (none is a
# secret), so the CLI keeps its own.
CLI_OWN_VARIABLES = frozenset({"HOME", "PATH"})


def env_arguments(env: Mapping[str, str]) -> list[str]:
    """`-e KEY` per box variable, sorted; the values travel in the CLI's environment (`env_values`).

    Other local users can read any command line (/proc/<pid>/cmdline), so no value of a box variable
    (tokens, app secrets) is ever put there (security S9). docker and boxlite both take `-e KEY` to mean
    "this variable, with the value from my own environment".
    """
    arguments: list[str] = []
    for key in sorted(env):
        arguments += ["-e", f"{key}={env[key]}" if key in CLI_OWN_VARIABLES else key]
    return arguments


def env_values(env: Mapping[str, str]) -> dict[str, str]:
    """The environment to run the CLI with for `env_arguments(env)`: the server's plus the box values."""
    return {**os.environ, **{key: value for key, value in env.items() if key not in CLI_OWN_VARIABLES}}


def cli_failure(
    op: str, exit_code: int, stderr: str, *, program: str, not_found_markers: tuple[str, ...]
) -> SandboxError:
    """A failed CLI call: BoxNotFound when stderr says the box is missing, else the exit code and stderr."""
    if any(marker in stderr.lower() for marker in not_found_markers):
        return BoxNotFound(f"{op}: sandbox not found: {stderr}")
    return SandboxError(f"{op}: {program} exited with code {exit_code}: {stderr or 'command failed'}")


def run_cli(
    argv: list[str],
    *,
    timeout: float,
    op: str,
    missing_message: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` without a shell, capturing both streams; the exit code is left to the caller.

    `env` is the CLI's whole environment (default: the server's).
    """
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError as error:
        raise SandboxUnavailable(missing_message) from error
    except subprocess.TimeoutExpired as error:
        raise SandboxError(f"{op}: timed out after {timeout:g} s") from error
    except (OSError, ValueError, OverflowError) as error:
        # subprocess refuses a NUL byte or an unencodable character in an argument, or a timeout it
        # cannot convert, with ValueError or OverflowError rather than OSError.
        raise SandboxError(f"{op}: {error}") from error


def text(output: bytes) -> str:
    return output.decode("utf-8", errors="replace").strip()


def snippet(output: str) -> str:
    output = " ".join(output.split())
    return output if len(output) <= SNIPPET_LENGTH else output[:SNIPPET_LENGTH] + "…"


def first_inspect_record(stdout: str, *, op: str, ref: str) -> dict[str, Any]:
    """The first object of an `inspect` JSON array; `[]` means not found, anything malformed is an error."""
    try:
        records = json.loads(stdout)
    except ValueError as error:
        raise SandboxError(f"{op}: unexpected output (not JSON): {snippet(stdout) or '(empty)'}") from error
    except RecursionError as error:
        # json gives up on absurdly deep nesting with RecursionError, which is not a ValueError.
        raise SandboxError(f"{op}: unexpected output (nested too deeply): {snippet(stdout)}") from error
    if not isinstance(records, list):
        raise SandboxError(f"{op}: unexpected output (not a JSON array): {snippet(stdout)}")
    if not records:
        raise BoxNotFound(f"{op}: sandbox not found: {ref}")
    if not isinstance(records[0], dict):
        raise SandboxError(f"{op}: unexpected output (not a JSON object): {snippet(stdout)}")
    return records[0]


def nested(record: dict[str, Any], *keys: str) -> Any:
    """`record[k1][k2]…`, or None as soon as a level is missing or is not an object."""
    value: Any = record
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
