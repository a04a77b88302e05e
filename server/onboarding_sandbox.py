"""The sandbox step of onboard: keep the provider config.toml names, else detect one (sandbox.detect)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from core.config import Config
from sandbox import detect
from server.onboarding import SANDBOX_PROVIDERS, OnboardError, unsupported_sandbox_provider


def written_sandbox_provider(path: Path | None) -> str:
    """`[sandbox].provider` as config.toml spells it, "" when the file or the key is absent.

    A file that cannot be read again counts as naming one: onboard must never overwrite a choice it
    could not see.
    """
    if path is None or not Path(path).exists():
        return ""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unreadable"
    sandbox = data.get("sandbox", {})
    value = sandbox.get("provider", "") if isinstance(sandbox, dict) else ""
    return value.strip() if isinstance(value, str) else "unreadable"


def sandbox_step(
    config: Config,
    *,
    flag: str | None,
    say: Callable[[str], None],
    ask: Callable[[str], str] | None,
    probes: detect.Probes | None = None,
) -> str:
    """Apply the sandbox choice to `config` and return it: the flag, else the file's own, else detection.

    `say` tells the person what was found and why (nothing for the flag: they just said it); `ask`
    (interactive onboard only) offers the detected provider as the default answer.
    """
    if flag is not None:
        config.sandbox.provider = flag
        return flag
    if written_sandbox_provider(config.path):
        say(f"sandbox: {config.sandbox.provider} (set in {config.path}; not detected again)")
        return config.sandbox.provider
    found = detect.sandbox_detect(probes or detect.DEFAULT_PROBES)
    say(found.report)
    provider = found.provider if ask is None else sandbox_ask(ask, found.provider)
    config.sandbox.provider = provider
    if provider == found.provider and found.local_isolation is not None:
        config.sandbox.local_isolation = found.local_isolation
    if provider != found.provider:
        say(f"sandbox: {provider} (chosen instead of {found.provider})")
    return provider


def sandbox_ask(ask: Callable[[str], str], detected: str) -> str:
    options = "\n".join(f"  {number}. {name}" for number, name in enumerate(SANDBOX_PROVIDERS, start=1))
    answer = ask(f"Sandbox providers:\n{options}\nSandbox provider [{detected}]: ").strip().lower()
    if not answer:
        return detected
    by_number = {str(number): name for number, name in enumerate(SANDBOX_PROVIDERS, start=1)}
    choice = by_number.get(answer, answer)
    if choice not in SANDBOX_PROVIDERS:
        raise OnboardError(unsupported_sandbox_provider(answer))
    return choice
