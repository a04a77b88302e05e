"""`manage.py onboard`: create or update config.toml and the first-run state (spec config-and-commands §9)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, OutputWrapper

from agents.models import AgentStatus
from agents.services import manager_ensure
from csgclaw_site.config import (
    CSGHUB_LITE_PROVIDER,
    DEFAULT_CSGHUB_LITE_API_KEY,
    DEFAULT_CSGHUB_LITE_BASE_URL,
    Config,
    ConfigError,
    ConfigNotFound,
    ProviderConfig,
    csghub_lite_unreachable_message,
    default_config,
    discover_csghub_lite_models,
    load_config,
    save_config,
    split_selector,
    validate_models,
)
from im import services as im_services

CUSTOM_PROVIDER = "custom"
KEEP_CURRENT = "keep current"
# The provider a custom configuration goes to when there is no current default to take it from.
NEW_PROVIDER_NAME = "default"
SANDBOX_PROVIDERS = ("boxlite-cli", "boxlite-sdk", "csghub", "docker", "local")
SKIPPED_BOX_DETAIL = "manager box was not created (--skip-manager-box)"
# Reported instead of an agent status when the sandbox step did not run.
BOX_SKIPPED = "skipped"
# Pulling an image and booting a box can take minutes; a line every 10 s shows onboard is not stuck.
PROGRESS_INTERVAL = 10

FRESH_INTRO = f"""\
No model provider is configured yet. Choose one:
  1. csghub-lite  local models served by CSGHub-lite (default URL {DEFAULT_CSGHUB_LITE_BASE_URL});
                  start it with `csghub-lite run <model>` or `csghub-lite serve`;
                  the models are discovered from its /models endpoint
  2. custom       any OpenAI-compatible API: base URL, API key and models"""


class OnboardError(Exception):
    """Aborts onboard; str() is printed to stderr as is and the exit status is 1."""


@dataclass(frozen=True)
class ModelFlags:
    """The model flags of §9.1, validated; None means "not given"."""

    provider: str | None
    base_url: str | None
    api_key: str | None
    models: list[str] | None
    reasoning_effort: str | None

    @property
    def given(self) -> bool:
        return any(
            value is not None
            for value in (self.provider, self.base_url, self.api_key, self.models, self.reasoning_effort)
        )


@dataclass(frozen=True)
class ManagerBox:
    """The manager's status after the sandbox step (`running`, `failed`, … or `skipped`) and why."""

    status: str
    detail: str = ""

    @property
    def table_text(self) -> str:
        if self.status == BOX_SKIPPED:
            return "skipped (--skip-manager-box)"
        return f"{self.status}: {self.detail}" if self.detail else self.status


@dataclass(frozen=True)
class OnboardResult:
    config_path: Path
    manager_image: str
    users: list[str]
    manager_box: ManagerBox
    force_recreated: bool

    @property
    def message(self) -> str:
        return f"initialized config at {self.config_path}"


def parse_list(text: str) -> list[str]:
    """`a, b,,a` → `["a", "b"]`: trimmed, empties dropped, first occurrence wins."""
    items: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item and item not in items:
            items.append(item)
    return items


def model_flags_from(options: dict[str, Any]) -> ModelFlags:
    """The model flags, with --provider and --models checked (step 2)."""
    provider = options["provider"]
    if provider is not None:
        provider = provider.strip().lower()
        if provider not in (CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER):
            raise OnboardError(
                f'unsupported --provider "{options["provider"]}"; '
                'supported values are "csghub-lite" and "custom"'
            )
    models = None
    if options["models"] is not None:
        models = parse_list(options["models"])
        if not models:
            raise OnboardError("--models must include at least one model identifier")
    return ModelFlags(
        provider=provider,
        base_url=_stripped(options["base_url"]),
        api_key=_stripped(options["api_key"]),
        models=models,
        reasoning_effort=_stripped(options["reasoning_effort"]),
    )


def sandbox_provider_from(options: dict[str, Any]) -> str | None:
    value = options["sandbox_provider"]
    if value is None:
        return None
    if value.strip().lower() not in SANDBOX_PROVIDERS:
        raise OnboardError(
            f'unsupported sandbox provider "{value}"; supported values are '
            '"boxlite-cli", "boxlite-sdk", "csghub", "docker" or "local"'
        )
    return value.strip().lower()


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def current_provider_name(config: Config) -> str:
    """The provider of the current default selector, else the only provider, else ""."""
    providers = config.models.providers
    if config.models.default:
        return split_selector(config.models.default)[0]
    if len(providers) == 1:
        return next(iter(providers))
    return ""


def apply_custom_provider(
    config: Config,
    *,
    base_url: str | None,
    api_key: str | None,
    models: list[str] | None,
    reasoning_effort: str | None,
) -> None:
    """Overwrite only the given fields of the current default's provider (or a new `default` provider)."""
    name = current_provider_name(config) or NEW_PROVIDER_NAME
    provider = config.models.providers.setdefault(name, ProviderConfig(name=name))
    if base_url is not None:
        provider.base_url = base_url
    if api_key is not None:
        provider.api_key = api_key
    if models is not None:
        provider.models = models
    if reasoning_effort is not None:
        provider.reasoning_effort = reasoning_effort
    if provider.models and (models is not None or not config.models.default):
        config.models.default = f"{name}.{provider.models[0]}"


def discover_models(base_url: str, api_key: str) -> list[str]:
    try:
        return discover_csghub_lite_models(base_url, api_key)
    except ConfigError as exc:
        raise OnboardError(csghub_lite_unreachable_message(base_url.strip().rstrip("/"), exc)) from exc


def apply_csghub_lite(
    config: Config,
    *,
    base_url: str,
    api_key: str,
    models: list[str],
    reasoning_effort: str | None,
    keep_default: bool,
) -> None:
    """Point the `csghub-lite` provider at `base_url`; it replaces a `default` provider left all empty."""
    providers = config.models.providers
    provider = providers.setdefault(CSGHUB_LITE_PROVIDER, ProviderConfig(name=CSGHUB_LITE_PROVIDER))
    provider.base_url, provider.api_key, provider.models = base_url, api_key, models
    if reasoning_effort is not None:
        provider.reasoning_effort = reasoning_effort
    placeholder = providers.get(NEW_PROVIDER_NAME)
    if placeholder is not None and not (placeholder.base_url or placeholder.api_key or placeholder.models):
        del providers[NEW_PROVIDER_NAME]
    current_name, current_model = split_selector(config.models.default)
    if not (keep_default and current_name == CSGHUB_LITE_PROVIDER and current_model in models):
        config.models.default = f"{CSGHUB_LITE_PROVIDER}.{models[0]}"


def apply_model_flags(config: Config, flags: ModelFlags) -> None:
    """Step 3, non-interactive: the model flags decide."""
    if flags.provider == CSGHUB_LITE_PROVIDER:
        base_url = flags.base_url or DEFAULT_CSGHUB_LITE_BASE_URL
        api_key = flags.api_key or DEFAULT_CSGHUB_LITE_API_KEY
        apply_csghub_lite(
            config,
            base_url=base_url,
            api_key=api_key,
            models=flags.models or discover_models(base_url, api_key),
            reasoning_effort=flags.reasoning_effort,
            keep_default=True,
        )
    else:
        apply_custom_provider(
            config,
            base_url=flags.base_url,
            api_key=flags.api_key,
            models=flags.models,
            reasoning_effort=flags.reasoning_effort,
        )


def apply_server_flags(config: Config, options: dict[str, Any], sandbox_provider: str | None) -> None:
    """Step 4: the flags outside [models]."""
    if (options["manager_image"] or "").strip():
        config.bootstrap.manager_image = options["manager_image"].strip()
    registries = parse_list(options["debian_registries"] or "")
    if registries:
        config.sandbox.debian_registries = registries
    if sandbox_provider is not None:
        config.sandbox.provider = sandbox_provider
    if options["listen_addr"] is not None:
        config.server.listen_addr = options["listen_addr"]
    if options["advertise_base_url"] is not None:
        config.server.advertise_base_url = options["advertise_base_url"]
    if options["access_token"] is not None:
        config.server.access_token = options["access_token"]
    if options["no_auth"] is not None:
        config.server.no_auth = options["no_auth"]


class BoxProgress:
    """The progress callback for manager_box_ensure: one stderr line per PROGRESS_INTERVAL seconds."""

    def __init__(self, stderr: OutputWrapper) -> None:
        self.stderr = stderr
        self.next_report = PROGRESS_INTERVAL

    def __call__(self, elapsed: float) -> None:
        if elapsed < self.next_report:
            return
        reached = int(elapsed // PROGRESS_INTERVAL) * PROGRESS_INTERVAL
        self.stderr.write(f"waiting for manager box ({reached}s)...")
        self.stderr.flush()
        self.next_report = reached + PROGRESS_INTERVAL


class Command(BaseCommand):
    help = (
        "Create or update config.toml and the first-run state: IM seed, manager agent, bot and box. "
        "Safe to re-run."
    )

    def add_arguments(self, parser):
        models = parser.add_argument_group("model provider")
        models.add_argument("--provider", help='model provider preset: "csghub-lite" or "custom"')
        models.add_argument("--base-url", help="provider base URL, including /v1")
        models.add_argument("--api-key", help="provider API key")
        models.add_argument("--models", help="comma-separated model ids; the first becomes the default")
        models.add_argument("--reasoning-effort", help="reasoning_effort injected into chat requests")
        server = parser.add_argument_group("server and sandbox")
        server.add_argument("--manager-image", help="image for the manager and every worker")
        server.add_argument("--debian-registries", help="comma-separated registries for unqualified images")
        server.add_argument("--sandbox-provider", help="boxlite-sdk, boxlite-cli, docker, csghub or local")
        server.add_argument("--listen-addr", help="[server].listen_addr, host:port")
        server.add_argument("--advertise-base-url", help="base URL the boxes use to call back")
        server.add_argument("--access-token", help="bearer token of the bot routes")
        auth = server.add_mutually_exclusive_group()
        auth.add_argument(
            "--no-auth", dest="no_auth", action="store_const", const=True, help="disable bearer checks"
        )
        auth.add_argument("--auth", dest="no_auth", action="store_const", const=False, help="enable them")
        run = parser.add_argument_group("run")
        run.add_argument("--no-input", action="store_true", help="never prompt")
        run.add_argument("--skip-manager-box", action="store_true", help="do everything but the sandbox step")
        run.add_argument("--strict", action="store_true", help="fail when the manager box is not ready")
        run.add_argument(
            "--force-recreate-manager",
            action="store_true",
            help="remove and recreate the manager box, wiping <home>/agents/manager/",
        )
        run.add_argument("--output", choices=("table", "json"), default="table", help="output format")

    def handle(self, *args, **options):
        try:
            result = self.onboard(options)
        except (OnboardError, ConfigError) as exc:
            self.stderr.write(str(exc))
            raise SystemExit(1) from None
        if options["output"] == "json":
            self.stdout.write(json.dumps(self.json_output(result), ensure_ascii=False, separators=(",", ":")))
        else:
            self.stdout.write(self.table_output(result))

    def onboard(self, options: dict[str, Any]) -> OnboardResult:
        """§9.2 in order. Nothing touches the database before the config is saved (step 7)."""
        try:
            config = load_config()
        except ConfigNotFound:
            config = default_config()
        flags = model_flags_from(options)
        sandbox_provider = sandbox_provider_from(options)
        if flags.given:
            apply_model_flags(config, flags)
        elif self.prompting_allowed(options):
            self.prompt_model_settings(config)
        apply_server_flags(config, options, sandbox_provider)
        validate_models(config)
        path = save_config(config)

        call_command("migrate", interactive=False, verbosity=0)
        im_services.seed_ensure()
        if options["skip_manager_box"]:
            manager_ensure(config=config, status=AgentStatus.UNKNOWN, status_detail=SKIPPED_BOX_DETAIL)
            box = ManagerBox(BOX_SKIPPED, SKIPPED_BOX_DETAIL)
        else:
            manager_ensure(config=config)
            box = self.ensure_manager_box(
                config, force=options["force_recreate_manager"], strict=options["strict"]
            )
        return OnboardResult(
            config_path=path,
            manager_image=config.bootstrap.manager_image,
            users=[seed.name for seed in im_services.SEED_USERS],
            manager_box=box,
            force_recreated=options["force_recreate_manager"] and not options["skip_manager_box"],
        )

    def ensure_manager_box(self, config: Config, *, force: bool, strict: bool) -> ManagerBox:
        # Imported here: the lifecycle pulls in the sandbox providers, which a failed onboard never needs.
        from agents.lifecycle import manager_box_ensure

        agent = manager_box_ensure(config=config, force=force, progress=BoxProgress(self.stderr))
        if agent.status == AgentStatus.RUNNING:
            return ManagerBox(agent.status)
        # A box the runtime reports as created or exited is no more usable than a failed one.
        detail = agent.status_detail or f"the box is {agent.status}"
        if strict:
            raise OnboardError(f"manager box is not ready: {detail}")
        self.stderr.write(f"warning: manager box is not ready: {detail}")
        return ManagerBox(agent.status, agent.status_detail)

    def table_output(self, result: OnboardResult) -> str:
        admin, manager = result.users
        lines = [
            result.message,
            f'ensured bootstrap agent "manager" with image "{result.manager_image}"',
            f'ensured IM members "{admin}" and "{manager}"',
            f"manager box: {result.manager_box.table_text}",
        ]
        if result.force_recreated:
            lines.append("manager box was force-recreated")
        return "\n".join(lines)

    def json_output(self, result: OnboardResult) -> dict[str, Any]:
        box = {"status": result.manager_box.status}
        if result.manager_box.detail:
            box["detail"] = result.manager_box.detail
        output: dict[str, Any] = {
            "command": "onboard",
            "action": "initialize",
            "status": "initialized",
            "config_path": str(result.config_path),
            "manager_image": result.manager_image,
            "users": result.users,
            "manager_box": box,
        }
        if result.force_recreated:
            output["force_recreated"] = True
        output["message"] = result.message
        return output

    # --- interactive flow (§9.3) ----------------------------------------------------------------------

    def prompting_allowed(self, options: dict[str, Any]) -> bool:
        return (
            not options["no_input"]
            and options["output"] == "table"
            and not settings.CI
            and sys.stdin.isatty()
            and self.stdout.isatty()
        )

    def ask(self, prompt: str) -> str:
        """One line from stdin, trimmed; EOF is an empty answer."""
        self.stdout.write(prompt, ending="")
        self.stdout.flush()
        return sys.stdin.readline().strip()

    def ask_value(self, label: str, current: str, *, hint: str = "", prompt_label: str = "") -> str:
        """`<label> [<hint>]: `; an empty answer keeps `current`, and one of the two is required."""
        prompt_label = prompt_label or label
        prompt = f"{prompt_label} [{hint or current}]: " if current else f"{prompt_label}: "
        value = self.ask(prompt) or current
        if not value:
            raise OnboardError(f"{label} is required")
        return value

    def choose(self, prompt: str, options: tuple[str, ...]) -> str:
        """A listed option by number or case-insensitive name; empty picks the first (the default)."""
        answer = self.ask(prompt)
        accepted = {str(number): option for number, option in enumerate(options, start=1)}
        accepted.update({option: option for option in options})
        if KEEP_CURRENT in options:
            accepted["keep"] = KEEP_CURRENT
        if not answer:
            return options[0]
        if answer.lower() in accepted:
            return accepted[answer.lower()]
        raise OnboardError(
            f'unsupported provider selection "{answer}"; enter "csghub-lite", "custom", or a listed number'
        )

    def prompt_model_settings(self, config: Config) -> None:
        current = config.models.providers.get(current_provider_name(config))
        if current is None:
            self.stdout.write(FRESH_INTRO)
            choice = self.choose(
                f"Provider [{CSGHUB_LITE_PROVIDER}]: ", (CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER)
            )
        else:
            self.show_current(config, current)
            choice = self.choose(
                f"Provider [{KEEP_CURRENT}: {current.name}]: ",
                (KEEP_CURRENT, CSGHUB_LITE_PROVIDER, CUSTOM_PROVIDER),
            )
        if choice == CSGHUB_LITE_PROVIDER:
            self.prompt_csghub_lite(config)
        elif choice == CUSTOM_PROVIDER:
            self.prompt_custom(config)
        else:
            default = config.models.default or current.name
            self.stdout.write(f'Keeping model provider "{current.name}" (default model {default}).')

    def show_current(self, config: Config, provider: ProviderConfig) -> None:
        # The API key is never shown, not even masked.
        self.stdout.write(
            "Current model settings:\n"
            f"  Provider: {provider.name}\n"
            f"  Base URL: {provider.base_url}\n"
            f"  Models: {', '.join(provider.models)}\n"
            f"  Default model: {config.models.default or '(not set)'}\n"
            f"  Reasoning effort: {provider.reasoning_effort or '(not set)'}\n"
            "Choose a model provider:\n"
            f"  1. {KEEP_CURRENT}\n"
            f"  2. {CSGHUB_LITE_PROVIDER}\n"
            f"  3. {CUSTOM_PROVIDER}"
        )

    def prompt_csghub_lite(self, config: Config) -> None:
        existing = config.models.providers.get(CSGHUB_LITE_PROVIDER)
        current_url = (existing.base_url if existing is not None else "") or DEFAULT_CSGHUB_LITE_BASE_URL
        base_url = self.ask_value("CSGHub-lite base URL", current_url).rstrip("/")
        self.stdout.write(f"Checking CSGHub-lite models at {base_url}/models ...")
        self.stdout.flush()
        models = discover_models(base_url, DEFAULT_CSGHUB_LITE_API_KEY)
        apply_csghub_lite(
            config,
            base_url=base_url,
            api_key=DEFAULT_CSGHUB_LITE_API_KEY,
            models=models,
            reasoning_effort=None,
            keep_default=False,
        )
        self.stdout.write(f"Found {len(models)} model(s): {', '.join(models)}")
        self.stdout.write(f"Default model: {config.models.default}")

    def prompt_custom(self, config: Config) -> None:
        name = current_provider_name(config) or NEW_PROVIDER_NAME
        provider = config.models.providers.get(name) or ProviderConfig(name=name)
        base_url = self.ask_value("Base URL", provider.base_url)
        api_key = self.ask_value("API key", provider.api_key, hint="keep existing")
        answer = self.ask_value("Models", ",".join(provider.models), prompt_label="Models (comma-separated)")
        models = parse_list(answer)
        if not models:
            raise OnboardError("Models is required")
        apply_custom_provider(
            config, base_url=base_url, api_key=api_key, models=models, reasoning_effort=None
        )
        self.stdout.write(f"Default model: {config.models.default}")
