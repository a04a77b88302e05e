"""`manage.py onboard`: create or update config.toml and the first-run state (spec config-and-commands §9)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, OutputWrapper

from agents.models import AgentStatus
from agents.records import manager_ensure
from core.config import (
    Config,
    ConfigError,
    ConfigNotFound,
    default_config,
    load_config,
    save_config,
    validate_models,
)
from im import services as im_services
from server.onboarding import (
    OnboardError,
    access_token_generate,
    access_token_notice,
    apply_model_flags,
    apply_server_flags,
    model_flags_from,
    sandbox_provider_from,
)
from server.onboarding_prompts import ModelSettingsPrompts
from server.onboarding_sandbox import sandbox_step

SKIPPED_BOX_DETAIL = "manager box was not created (--skip-manager-box)"
# Reported instead of an agent status when the sandbox step did not run.
BOX_SKIPPED = "skipped"
# Pulling an image and booting a box can take minutes; a line every 10 s shows onboard is not stuck.
PROGRESS_INTERVAL = 10
NOT_READY_EXIT = (
    "onboard: the manager box is not ready (reason above); the config was saved. Fix the cause, then run "
    "onboard again, or start the server and press Start on the manager."
)
# Their INFO lines ("HTTP Request: GET …") would land between the prompts of a person at a terminal.
QUIET_LOGGERS = ("httpx", "httpcore")


@dataclass(frozen=True)
class ManagerBox:
    """The manager's status after the sandbox step (`running`, `failed`, … or `skipped`) and why."""

    status: str
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.status in (AgentStatus.RUNNING, BOX_SKIPPED)

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
    # Set when onboard generated the server token this run (security.md S1.1).
    generated_token: str | None = None
    # Whether config.toml existed before this run.
    updated: bool = False

    @property
    def message(self) -> str:
        return f"{'updated' if self.updated else 'initialized'} config at {self.config_path}"


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
        server.add_argument(
            "--sandbox-provider",
            help="boxlite-sdk, boxlite-cli, docker, csghub or local; without it a new config gets the "
            "one detected on this machine (Docker, BoxLite, CSGHub, else local); an existing one keeps "
            "its own",
        )
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
        run.add_argument(
            "--strict",
            action="store_true",
            help="stop with the error as soon as the manager box is not ready, before the summary",
        )
        run.add_argument(
            "--force-recreate-manager",
            action="store_true",
            help="remove and recreate the manager box, wiping <home>/agents/manager/",
        )
        run.add_argument("--output", choices=("table", "json"), default="table", help="output format")

    def handle(self, *args, **options):
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            result = self.onboard(options)
        except (OnboardError, ConfigError) as exc:
            self.stderr.write(str(exc))
            raise SystemExit(1) from None
        if options["output"] == "json":
            # stdout stays one JSON document for programs; the token line goes to the person watching.
            if result.generated_token is not None:
                self.stderr.write(access_token_notice(result.generated_token, result.config_path))
            self.stdout.write(json.dumps(self.json_output(result), ensure_ascii=False, separators=(",", ":")))
        else:
            self.stdout.write(self.table_output(result))
        if not result.manager_box.ready:
            # The config is written and the summary shown; the status tells scripts the team cannot answer.
            self.stderr.write(NOT_READY_EXIT)
            raise SystemExit(1)

    def onboard(self, options: dict[str, Any]) -> OnboardResult:
        """§9.2 in order. Nothing touches the database before the config is saved (step 7)."""
        try:
            config = load_config()
            updated = True
        except ConfigNotFound:
            config = default_config()
            updated = False
        flags = model_flags_from(options)
        sandbox_provider = sandbox_provider_from(options)
        prompts = ModelSettingsPrompts(self.stdout) if self.prompting_allowed(options) else None
        if flags.given:
            apply_model_flags(config, flags)
        elif prompts is not None:
            prompts.prompt_model_settings(config)
        apply_server_flags(config, options, sandbox_provider)
        # Before the sandbox step, so a run that cannot succeed neither probes nor asks about sandboxes.
        validate_models(config)
        # In JSON mode stdout is one document for programs; the findings go to the person on stderr.
        say = self.stderr.write if options["output"] == "json" else self.stdout.write
        sandbox_step(
            config,
            flag=sandbox_provider,
            say=say,
            ask=prompts.ask if prompts is not None and not flags.given else None,
        )
        generated_token = access_token_generate(config, options)
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
            generated_token=generated_token,
            updated=updated,
        )

    def ensure_manager_box(self, config: Config, *, force: bool, strict: bool) -> ManagerBox:
        # Imported here: the lifecycle pulls in the sandbox providers, which a failed onboard never needs.
        from agents.lifecycle import manager_box_ensure, manager_box_hint

        agent = manager_box_ensure(config=config, force=force, progress=BoxProgress(self.stderr))
        if agent.status == AgentStatus.RUNNING:
            return ManagerBox(agent.status)
        # A box the runtime reports as created or exited is no more usable than a failed one.
        detail = agent.status_detail or f"the box is {agent.status}"
        if strict:
            raise OnboardError(f"manager box is not ready: {detail}")
        self.stderr.write(f"warning: manager box is not ready: {detail}")
        hint = manager_box_hint(config, agent)
        if hint:
            self.stderr.write(hint)
        return ManagerBox(agent.status, agent.status_detail)

    def table_output(self, result: OnboardResult) -> str:
        admin, manager = result.users
        lines = [result.message]
        if result.generated_token is not None:
            lines.append(access_token_notice(result.generated_token, result.config_path))
        lines += [
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

    def prompting_allowed(self, options: dict[str, Any]) -> bool:
        """§9.3: prompt only when a person can answer and the output is not meant for a program."""
        return (
            not options["no_input"]
            and options["output"] == "table"
            and not settings.CI
            and sys.stdin.isatty()
            and self.stdout.isatty()
        )
