"""`manage.py bootstrap_manager`: the manager part of the start-up bootstrap, in the foreground (spec §12)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, OutputWrapper

from agents.lifecycle import manager_box_ensure
from agents.models import Agent, AgentStatus
from core.config import (
    Config,
    ConfigError,
    api_base_url,
    load_config,
    render_effective_config,
    validate_models,
)
from im import services as im_services

# Pulling an image and booting a box can take minutes; a line every 10 s shows the command is not stuck.
PROGRESS_INTERVAL_SECONDS = 10


class BoxProgress:
    """The progress callback for manager_box_ensure: one stderr line per PROGRESS_INTERVAL_SECONDS."""

    def __init__(self, stderr: OutputWrapper) -> None:
        self.stderr = stderr
        self.next_report = PROGRESS_INTERVAL_SECONDS

    def __call__(self, elapsed: float) -> None:
        if elapsed < self.next_report:
            return
        reached = int(elapsed // PROGRESS_INTERVAL_SECONDS) * PROGRESS_INTERVAL_SECONDS
        self.stderr.write(f"waiting for manager box ({reached}s)...")
        self.stderr.flush()
        self.next_report = reached + PROGRESS_INTERVAL_SECONDS


def serves_nothing_line(config: Config) -> str:
    """The last line: this command only prepared the manager; the IM needs the server running."""
    return (
        "this command serves nothing: start the server with `python manage.py runserver` (or `make run`) "
        f"and open {api_base_url(config)}/"
    )


def manager_status_line(agent: Agent) -> str:
    line = f'manager agent "{agent.id}": {agent.status}'
    return f"{line} (box {agent.box_id})" if agent.box_id else line


class Command(BaseCommand):
    help = "Ensure the manager agent, its bot and its box now, in the foreground."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="remove the manager box, delete <home>/agents/manager/ and create a new box",
        )

    def handle(self, *args, **options):
        try:
            config = load_config()
            validate_models(config)
        except ConfigError as exc:
            self.stderr.write(str(exc))
            raise SystemExit(1) from None
        self.print_effective_config(config)
        # The IM seed needs the tables; on a fresh database this command may run before the server ever did.
        call_command("migrate", interactive=False, verbosity=0)
        im_services.seed_ensure()
        agent = manager_box_ensure(config=config, force=options["force"], progress=BoxProgress(self.stderr))
        self.stdout.write(manager_status_line(agent))
        if agent.status != AgentStatus.RUNNING:
            self.stderr.write(f"manager box is not ready: {agent.status_detail or f'status {agent.status}'}")
            raise SystemExit(1)
        self.stdout.write(serves_nothing_line(config))

    def print_effective_config(self, config: Config) -> None:
        self.stdout.write("effective config:")
        self.stdout.write(render_effective_config(config), ending="")
        self.stdout.flush()
