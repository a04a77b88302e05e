"""Which agent runtime a box asks for (builtin-runtime.md §2.1): the agent's label or `[sandbox].runtime`."""

from __future__ import annotations

from sandbox.providers.base import SandboxError

AUTO = "auto"
PICOCLAW = "picoclaw"
BUILTIN = "builtin"
SETTINGS = (AUTO, PICOCLAW, BUILTIN)
LABELS = (PICOCLAW, BUILTIN)
# The named providers run images, never a host Python; a dotted-path provider class decides for itself.
IMAGE_PROVIDERS = ("boxlite-cli", "boxlite-sdk", "csghub", "docker")


def runtime_setting(raw: str) -> str:
    """`[sandbox].runtime`, blank meaning `auto`; an unknown value is the error a local box start reports."""
    setting = raw.strip().lower() or AUTO
    if setting not in SETTINGS:
        raise SandboxError(
            f'local: unsupported [sandbox].runtime "{raw.strip()}"; '
            'supported values are "auto", "picoclaw" or "builtin"'
        )
    return setting


def requested_runtime(*, label: str, setting: str) -> str:
    """The label when the agent chose a runtime, else the setting: `auto`, `picoclaw` or `builtin`.

    A bad setting fails every start, labelled or not, so it is noticed before it matters.
    """
    configured = runtime_setting(setting)
    label = label.strip().lower()
    return label if label in LABELS else configured


def require_runtime_supported(*, provider: str, label: str, setting: str) -> None:
    """The built-in runtime runs only as a host process: asking an image provider for it is an error."""
    asked = label.strip().lower() or setting.strip().lower()
    if asked == BUILTIN and provider.strip() in IMAGE_PROVIDERS:
        raise SandboxError('builtin runtime requires [sandbox].provider = "local"')
